"""The docs site, built as `make docs` builds it and looked at in a real browser (headless Chromium).

Once per session: build _docs/ (tools/build_docs.py), serve it on 127.0.0.1 from a thread, and open
the home page and every notebook's page in Chromium, saving a screenshot of each under _docs/_shots/.
The tests then check what a reader would see: titles, a sidebar that lists every lesson, links that
lead somewhere, the lessons' saved plots, a `show_doc` parameter table, and a quiet console.
Lessons are found by glob (nbs/[0-9]*.ipynb), so each new lesson is checked without editing this file.
The build and the browser are the slow tier (`make test`); the converter's tests at the end are fast.
"""
import functools, http.server, json, re, subprocess, sys, threading, time, urllib.error, urllib.request
from pathlib import Path
from urllib.parse import urldefrag
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
from nb2sphinx import Converter, Symbols, page_name, site_url  # noqa: E402
from chromium import Chromium, find_chromium  # noqa: E402

DOCS, SHOTS = ROOT/'_docs', ROOT/'_docs'/'_shots'
LESSONS = sorted((ROOT/'nbs').glob('[0-9]*.ipynb'))
NOTEBOOKS = [ROOT/'nbs'/'index.ipynb'] + sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if p.name != 'index.ipynb')
BUILD_TIMEOUT = 600
SITE_TITLE = 'miniai'

def nb_title(nb: Path) -> str:
    "The title a notebook gives its page, as text: the `# Title` of its first markdown cell."
    for cell in json.loads(nb.read_text(encoding='utf-8'))['cells']:
        if cell['cell_type'] == 'markdown':
            m = re.search(r'^#\s+(.+?)\s*$', ''.join(cell['source']), re.MULTILINE)
            if m: return re.sub(r'\[([^]]*)\]\([^)]*\)', r'\1', m.group(1)).replace('`', '').replace('**', '')
    return page_name(nb.name)

_HIDDEN = re.compile(r'^\s*#\|\s*(hide|export|exporti|include:\s*false|output:\s*false)\s*$', re.MULTILINE)

def nb_images(nb: Path) -> int:
    "How many pictures the notebook's shown cells saved as outputs."
    return sum(1 for c in json.loads(nb.read_text(encoding='utf-8'))['cells']
               if c['cell_type'] == 'code' and not _HIDDEN.search(''.join(c['source']))
               for o in c.get('outputs', []) if any(k.startswith('image/') for k in o.get('data', {})))

def documented_name():
    "The exported name whose show_doc table we check: `Learner` once lesson 08 exports it."
    syms = Symbols()
    for name in ('Learner', 'load_fmnist'):
        if name in syms.syms: return name, syms.syms[name].split('#')[0]
    pytest.fail('neither Learner nor load_fmnist is exported: is miniai/_modidx.py there?')

# ---------------------------------------------------------------------------------------------
# fixtures: build, serve, browse (each once per session)

@pytest.fixture(scope='session')
def site():
    t = time.time()
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'build_docs.py')], cwd=ROOT, capture_output=True,
                       text=True, timeout=BUILD_TIMEOUT)
    assert r.returncode == 0, f'`make docs` failed:\n{r.stdout[-3000:]}\n{r.stderr[-8000:]}'
    print(f'\ndocs built in {time.time()-t:.0f}s: {r.stdout.strip()}')
    return DOCS

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass

@pytest.fixture(scope='session')
def server(site):
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(site)))
    th = threading.Thread(target=srv.serve_forever, daemon=True); th.start()
    yield f'http://127.0.0.1:{srv.server_address[1]}/'
    srv.shutdown(); srv.server_close(); th.join(10)

# a heading's text, without its '#' permalink
HEADING_TEXT = r'''const headingText = h => { const c = h.cloneNode(true);
  c.querySelectorAll('.headerlink').forEach(a => a.remove()); return c.textContent.trim(); };'''

PAGE_JS = '{' + HEADING_TEXT + r'''(() => {
  const all = s => [...document.querySelectorAll(s)];
  return {
    title: document.title,
    h1: headingText(document.querySelector('article h1') || document.createElement('h1')),
    sidebar: all('.sidebar-tree a.reference').map(a => ({text: a.textContent.trim(), href: a.href})),
    links: all('a[href]').map(a => a.href),
    images: all('article img').map(i => ({src: i.src, loaded: i.complete && i.naturalWidth > 0,
                                          output: !!i.closest('.cell_output')})),
  };
})()}'''

SECTION_JS = '{' + HEADING_TEXT + r'''(name => {
  for (const s of document.querySelectorAll('section')) {
    const h = s.querySelector(':scope > h1, :scope > h2, :scope > h3, :scope > h4, :scope > h5, :scope > h6');
    if (!h || headingText(h) !== name) continue;
    const t = s.querySelector('table');
    if (!t) return {id: s.id, table: null};
    const r = t.getBoundingClientRect();
    return {id: s.id, visible: r.width > 0 && r.height > 0,
            headers: [...t.querySelectorAll('thead th')].map(c => c.textContent.trim()),
            rows: [...t.querySelectorAll('tbody tr')].map(tr => [...tr.cells].map(c => c.textContent.trim())),
            signature: (s.querySelector('pre')?.textContent || '').trim()};
  }
  return null;
})(__NAME__)}'''

@pytest.fixture(scope='session')
def browsed(server):
    """Open every page in Chromium once: ({page: what it shows, with the documented section on its
    page}, what a search for the documented name shows)."""
    assert find_chromium(), ('no Chromium: `make test` installs it where apt can (as root or with passwordless sudo); '
                             'otherwise run `sudo apt-get install chromium`, or set CHROMIUM to a Chromium or Chrome program')
    SHOTS.mkdir(parents=True, exist_ok=True)
    res, name, doc_page = {}, *documented_name()
    with Chromium() as b:
        for nb in NOTEBOOKS:
            page = page_name(nb.name)
            p = b.open(server + f'{page}.html')
            info = p.eval(PAGE_JS)
            p.screenshot(SHOTS/f'{page}.png')
            if page == doc_page.removesuffix('.html'):
                info['section'] = p.eval(SECTION_JS.replace('__NAME__', json.dumps(name)))
                if info['section']: p.screenshot(SHOTS/f'{page}-{name}.png', selector=f'section#{info["section"]["id"]}')
            info['console_errors'] = p.console_errors
            res[page] = info
            p.close()
        # the search page works offline too: it finds the documented name on its page
        p = b.open(server + f'search.html?q={name}')
        found = p.wait_for('document.querySelectorAll("#search-results li a").length > 0', timeout=10)
        hits = p.eval('[...document.querySelectorAll("#search-results li a")].map(a => a.href)') if found else []
        search = dict(found=hits, console_errors=p.console_errors)
        p.screenshot(SHOTS/'search.png')
    return res, search

@pytest.fixture(scope='session')
def pages(browsed):
    "{page: what it shows} for the home page and every notebook's page."
    return browsed[0]

# ---------------------------------------------------------------------------------------------
# the checks

@pytest.mark.slow
def test_every_notebook_has_a_page(site):
    missing = [nb.name for nb in NOTEBOOKS if not (site/f'{page_name(nb.name)}.html').exists()]
    assert not missing, f'no page in _docs/ for {missing}'

@pytest.mark.slow
def test_page_titles(pages):
    bad = []
    for nb in NOTEBOOKS:
        page, title = page_name(nb.name), nb_title(nb)
        want = SITE_TITLE if page == 'index' else f'{title} - {SITE_TITLE}'
        if pages[page]['title'] != want: bad.append(f'{page}.html: <title> is {pages[page]["title"]!r}, not {want!r}')
        if pages[page]['h1'] != title: bad.append(f'{page}.html: the heading is {pages[page]["h1"]!r}, not {title!r}')
    assert not bad, '\n'.join(bad)

@pytest.mark.slow
def test_sidebar_lists_every_lesson(pages, server):
    want = [(nb_title(nb), server + f'{page_name(nb.name)}.html') for nb in LESSONS]
    bad = []
    for page, info in pages.items():
        have = {(a['text'], urldefrag(a['href'])[0]) for a in info['sidebar']}  # the current page's is '#'
        if missing := [w for w in want if w not in have]: bad.append(f'the sidebar of {page}.html lacks {missing}')
    assert not bad, '\n'.join(bad) + f"\n(the home page's sidebar: {pages['index']['sidebar']})"

def _fetch(url, cache={}):
    if url not in cache:
        try:
            with urllib.request.urlopen(url, timeout=10) as r: cache[url] = (r.status, r.read().decode('utf-8', 'replace'))
        except urllib.error.HTTPError as e: cache[url] = (e.code, '')
    return cache[url]

@pytest.mark.slow
def test_internal_links_resolve(pages, server):
    bad = []
    for page, info in pages.items():
        for link in sorted(set(info['links'])):
            if not link.startswith(server): continue  # an external link: not ours to check offline
            url, frag = urldefrag(link)
            status, html = _fetch(url)
            if status != 200: bad.append(f'{page}.html -> {link}: HTTP {status}')
            elif frag and not re.search(rf'''\bid=["']{re.escape(frag)}["']''', html):
                bad.append(f'{page}.html -> {link}: no element with id {frag!r} there')
    assert not bad, 'broken internal links:\n' + '\n'.join(bad)

@pytest.mark.slow
def test_lesson_pages_show_output_images(pages):
    bad = []
    for nb in LESSONS:
        page = page_name(nb.name)
        imgs = pages[page]['images']
        shown = sum(i['output'] and i['loaded'] for i in imgs)
        if broken := [i['src'] for i in imgs if not i['loaded']]: bad.append(f'{page}.html: images that do not load: {broken}')
        if shown != nb_images(nb): bad.append(f'{page}.html shows {shown} output images; {nb.name} saved {nb_images(nb)}')
        if not shown: bad.append(f'{page}.html shows no saved output image: a lesson should save at least one '
                                 f'plot (run it with tools/execute.py)')
    assert not bad, '\n'.join(bad)

@pytest.mark.slow
def test_documented_section_has_parameter_table(pages):
    name, doc_page = documented_name()
    sec = pages[doc_page.removesuffix('.html')].get('section')
    assert sec, f'{doc_page}: no section headed {name!r} (show_doc output missing?)'
    assert sec.get('headers'), f'{doc_page}: the {name!r} section has no parameter table'
    assert sec['visible'], f'{doc_page}: the parameter table of {name!r} is not displayed'
    assert sec['headers'][1:] == ['Type', 'Default', 'Details'], sec['headers']
    assert sec['rows'] and all(len(r) == 4 for r in sec['rows']), sec['rows']
    params = [r[0] for r in sec['rows'] if r[0] != 'Returns']
    assert params and all(p.lstrip('*') in sec['signature'] for p in params), (params, sec['signature'])
    assert any(r[3] for r in sec['rows']), f'{name}: no docments comment in its table: {sec["rows"]}'

@pytest.mark.slow
def test_search_finds_the_documented_name(browsed, server):
    (name, doc_page), search = documented_name(), browsed[1]
    assert search['found'], f'searching for {name} found nothing'
    assert any(urldefrag(u)[0] == server + doc_page for u in search['found']), search['found']

@pytest.mark.slow
def test_no_console_errors(browsed):
    pages, search = browsed
    errs = {p: i['console_errors'] for p, i in [*pages.items(), ('search', search)] if i['console_errors']}
    assert not errs, f'console errors: {errs}'

def test_quarto_config_is_nbdevs():
    "Where quarto is installed, `nbdev_docs` renders the same notebooks: its config is what nbdev writes."
    import yaml
    from nbdev.config import get_config
    from nbdev.quarto import _nbdev_yml
    cfg = get_config(path=ROOT)
    vals = {k: cfg[k] for k in ['title', 'description', 'branch', 'git_url', 'doc_host', 'doc_baseurl']}
    # nbdev_docs rewrites nbs/nbdev.yml from settings.ini: it must come out unchanged
    assert (ROOT/'nbs'/'nbdev.yml').read_text() == _nbdev_yml.format(**vals, doc_path=cfg.doc_path.name)
    q = yaml.safe_load((ROOT/'nbs'/'_quarto.yml').read_text())
    assert q['project']['type'] == 'website' and q['metadata-files'] == ['nbdev.yml', 'sidebar.yml']
    assert (ROOT/'nbs'/q['format']['html']['css']).exists()

# ---------------------------------------------------------------------------------------------
# the converter's links, on made-up notebooks (no build needed)

def _showdoc_cell(name):
    return dict(cell_type='code', metadata={}, source=f'#| output: asis\n#| echo: false\nshow_doc({name})',
                outputs=[dict(output_type='display_data', metadata={}, data={'text/markdown': f'### {name}\n\ntable'})])

def test_converter_links(tmp_path):
    syms = Symbols()
    syms.syms = {'load_fmnist': 'data.html#load_fmnist', 'Learner': 'learner.html#learner',
                 'Learner.fit': 'learner.html#learner.fit'}
    nbs = {'index.ipynb': dict(cells=[]), '00_data.ipynb': dict(cells=[_showdoc_cell('load_fmnist')]),
           '08_learner.ipynb': dict(cells=[_showdoc_cell('Learner')]),
           '11_sgd.ipynb': dict(cells=[_showdoc_cell('Learner')])}  # documented twice: labelled once
    c = Converter(nbs, syms, tmp_path)
    assert c.labels == {'load_fmnist': 'data', 'learner': 'learner'}
    site = site_url()
    cases = {'`load_fmnist`': '[`load_fmnist`](#api-load_fmnist)',
             '`Learner.fit()`': '[`Learner.fit()`](#api-learner)',  # no section of its own: its class's
             f'[`x`]({site}/data.html#_private)': '[`x`](data.ipynb)',  # nbdev's link, no section: the page
             '[map](nbs/00_data.ipynb)': '[map](data.ipynb)',  # the README's link to a lesson
             '[idx](00_data.ipynb#the-idx-format)': '[idx](data.ipynb#the-idx-format)',
             '[l](../LICENSE)': '[l](https://github.com/miniai/miniai/blob/main/LICENSE)',
             '`not_exported`': '`not_exported`', '[web](https://example.org/a.html)': '[web](https://example.org/a.html)',
             '```\n`load_fmnist`\n```': '```\n`load_fmnist`\n```'}
    for md, want in cases.items(): assert c.links(md) == want, md
    sd = lambda nb: [x['source'] for x in c.convert(nbs[nb], nb)['cells']]
    assert sd('08_learner.ipynb') == ['(api-learner)=\n## Learner\n\ntable']
    assert sd('11_sgd.ipynb') == ['## Learner\n\ntable']

def test_table_renderer():
    from nb2sphinx import TableRenderer
    def f(a: int, # the first
          b='x', # the second
          *args, **kwargs) -> list: # what comes back
        "Do `f`."
    md = TableRenderer(f)._repr_markdown_()
    assert "f(a: int, b='x', *args, **kwargs) -> list" in md
    assert '| `a` | `int` |  | the first |' in md and "| `b` |  | `'x'` | the second |" in md
    assert '| **Returns** | `list` |  | what comes back |' in md
