"""A small headless-Chromium driver for the docs test, over the DevTools protocol on a pipe.

Chromium started with `--remote-debugging-pipe` reads DevTools commands (JSON, each ended by a NUL
byte) on its file descriptor 3 and writes answers and events on 4. That needs no WebDriver, no
matching chromedriver, no open port and no Python package beyond the standard library.

    with Chromium() as b:
        page = b.open('http://127.0.0.1:8000/index.html')
        page.eval('document.title'); page.screenshot('shot.png'); page.console_errors
"""
from __future__ import annotations
import base64, fcntl, json, os, queue, shutil, subprocess, tempfile, threading, time
from pathlib import Path

CANDIDATES = ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable')
# Flags that work as root in a container, offline: no sandbox (root), no GPU, and nothing that
# phones home (QUIC, component updates, sync, background networking).
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-default-apps', '--disable-extensions', '--mute-audio', '--hide-scrollbars',
         '--no-default-browser-check', '--password-store=basic', '--remote-debugging-pipe']

def find_chromium() -> str | None:
    "The Chromium executable: `$CHROMIUM`, else the first of the usual names on PATH."
    if os.environ.get('CHROMIUM'): return os.environ['CHROMIUM']
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)

class CDPError(RuntimeError): pass

class Chromium:
    "One headless Chromium process with a fresh profile; `open` gives a `Page`."
    def __init__(self, exe: str | None = None, width=1280, height=1000, timeout=30):
        self.exe = exe or find_chromium()
        if not self.exe: raise FileNotFoundError('no Chromium found: apt-get install chromium')
        self.width, self.height, self.timeout = width, height, timeout

    def __enter__(self):
        self.profile = tempfile.mkdtemp(prefix='miniai-chromium-')
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        # Chromium's ends go above 9 first, so that putting them on 3 and 4 cannot clobber one another
        to_chrome_r, from_chrome_w = (self._high(fd) for fd in (to_chrome_r, from_chrome_w))
        # bash (dash takes no descriptor above 9) puts our pipe ends on the descriptors 3 and 4 that Chromium expects
        cmd = (f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w} '
               f'{to_chrome_r}<&- {from_chrome_w}>&-')
        self.proc = subprocess.Popen(['bash', '-c', cmd, self.exe, *FLAGS, f'--user-data-dir={self.profile}',
                                      f'--window-size={self.width},{self.height}', 'about:blank'],
                                     pass_fds=(to_chrome_r, from_chrome_w), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(to_chrome_r); os.close(from_chrome_w)
        self._id, self._lock = 0, threading.Lock()
        self._answers: dict[int, queue.Queue] = {}
        self._events: dict[str | None, queue.Queue] = {}
        self._reader = threading.Thread(target=self._read, daemon=True); self._reader.start()
        self.send('Browser.getVersion')  # fails fast if Chromium did not start
        return self

    def __exit__(self, *exc):
        try: self.send('Browser.close', timeout=5)
        except Exception: pass
        try: self.proc.wait(10)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        for fd in (self._w, self._r):
            try: os.close(fd)
            except OSError: pass
        shutil.rmtree(self.profile, ignore_errors=True)

    @staticmethod
    def _high(fd):
        new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10); os.close(fd); return new

    def _read(self):
        buf = b''
        while True:
            try: chunk = os.read(self._r, 1 << 16)
            except OSError: break
            if not chunk: break
            buf += chunk
            *msgs, buf = buf.split(b'\0')
            for m in msgs:
                msg = json.loads(m)
                if 'id' in msg:
                    q = self._answers.get(msg['id'])
                    if q: q.put(msg)
                else: self._events.setdefault(msg.get('sessionId'), queue.Queue()).put(msg)
        for q in list(self._answers.values()): q.put({'error': {'message': 'Chromium closed the pipe'}})

    def send(self, method, params=None, session=None, timeout=None):
        "Send one DevTools command and wait for its answer."
        with self._lock:
            self._id += 1; i = self._id
            q = self._answers[i] = queue.Queue()
        msg = {'id': i, 'method': method, 'params': params or {}}
        if session: msg['sessionId'] = session
        os.write(self._w, json.dumps(msg).encode() + b'\0')
        try: ans = q.get(timeout=timeout or self.timeout)
        except queue.Empty:
            err = self.proc.stderr.read1(4000).decode(errors='replace') if self.proc.poll() is not None else ''
            raise CDPError(f'no answer to {method} in {timeout or self.timeout}s {err}') from None
        finally: self._answers.pop(i, None)
        if 'error' in ans: raise CDPError(f"{method}: {ans['error'].get('message')}")
        return ans.get('result', {})

    def events(self, session):
        return self._events.setdefault(session, queue.Queue())

    def open(self, url, settle=0.3) -> 'Page':
        "A new tab showing `url`, loaded (its `load` event fired, then `settle` seconds more)."
        tid = self.send('Target.createTarget', {'url': 'about:blank'})['targetId']
        sid = self.send('Target.attachToTarget', {'targetId': tid, 'flatten': True})['sessionId']
        page = Page(self, tid, sid)
        page.goto(url, settle)
        return page

class Page:
    "A tab: evaluate JavaScript, take screenshots, and the console errors it has logged."
    def __init__(self, browser: Chromium, target, session):
        self.b, self.target, self.session = browser, target, session
        self.console_errors: list[str] = []
        self.console: list[str] = []
        for m in ('Page.enable', 'Runtime.enable', 'Log.enable'): self.cmd(m)
        self.cmd('Emulation.setDeviceMetricsOverride',
                 dict(width=browser.width, height=browser.height, deviceScaleFactor=1, mobile=False))

    def cmd(self, method, params=None, timeout=None):
        return self.b.send(method, params, session=self.session, timeout=timeout)

    def _pump(self, until=None, timeout=0.0):
        "Collect this tab's events; stop at the first of method `until`, or when `timeout` runs out."
        q, end = self.b.events(self.session), time.time() + timeout
        while True:
            try: ev = q.get(timeout=max(0.0, end - time.time()))
            except queue.Empty: return None
            m, p = ev.get('method'), ev.get('params', {})
            if m == 'Runtime.consoleAPICalled':
                text = ' '.join(str(a.get('value', a.get('description', ''))) for a in p.get('args', []))
                self.console.append(f"{p.get('type')}: {text}")
                if p.get('type') in ('error', 'assert'): self.console_errors.append(f'console.{p["type"]}: {text}')
            elif m == 'Runtime.exceptionThrown':
                d = p.get('exceptionDetails', {})
                self.console_errors.append('uncaught: ' + (d.get('exception', {}).get('description') or d.get('text', '')))
            elif m == 'Log.entryAdded':
                e = p.get('entry', {})
                self.console.append(f"{e.get('level')}: {e.get('text')} {e.get('url', '')}")
                if e.get('level') == 'error': self.console_errors.append(f"{e.get('source')}: {e.get('text')} {e.get('url', '')}")
            if until and m == until: return ev

    def goto(self, url, settle=0.3):
        res = self.cmd('Page.navigate', {'url': url})
        if res.get('errorText'): raise CDPError(f"could not open {url}: {res['errorText']}")
        if not self._pump('Page.loadEventFired', self.b.timeout): raise CDPError(f'{url} did not load')
        self.wait_for(f'location.href.startsWith({json.dumps(url.split("#")[0])}) && document.readyState == "complete"')
        self._pump(timeout=settle)

    def wait_for(self, js, timeout=None):
        "Wait until the JavaScript expression `js` is true; returns whether it became so in time."
        end = time.time() + (timeout or self.b.timeout)
        while time.time() < end:
            if self.eval(f'!!({js})'): return True
            self._pump(timeout=0.05)
        return False

    def eval(self, js):
        "The value of the JavaScript expression `js` (JSON-able), awaiting it if it is a promise."
        r = self.cmd('Runtime.evaluate', {'expression': js, 'returnByValue': True, 'awaitPromise': True})
        if 'exceptionDetails' in r:
            raise CDPError(f"JavaScript failed: {r['exceptionDetails'].get('exception', {}).get('description')}")
        self._pump()
        return r['result'].get('value')

    def screenshot(self, path, selector=None):
        "Save a PNG of the viewport, or of the element matching `selector` scrolled into view."
        params = {'format': 'png'}
        if selector:
            box = self.eval(f'''(() => {{ const e = document.querySelector({json.dumps(selector)});
                e.scrollIntoView(); const r = e.getBoundingClientRect();
                return {{x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: Math.min(r.height, 3000)}}; }})()''')
            params.update(clip={**box, 'scale': 1}, captureBeyondViewport=True)
        data = self.cmd('Page.captureScreenshot', params)['data']
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self):
        self.b.send('Target.closeTarget', {'targetId': self.target})
