"""Run the benchmark runners in interleaved rounds, each in a fresh process, and write bench/RESULTS.md.

    python bench/bench.py run --model cnn --rounds 7                # appends to bench/results/cnn-1ep.jsonl
    python bench/bench.py run --model resnet --rounds 5
    python bench/bench.py report                                    # bench/results/*.jsonl -> bench/RESULTS.md
    python bench/bench.py quick                                     # a tiny check that every runner works
    python bench/bench.py setup-peers                               # venvs for the fastai and Lightning runners

A round runs every runner once (the order alternates between rounds, so a slow drift of the machine does not
favour one runner); the figure reported is, per runner, the median over rounds of its epoch time divided by the
`raw` epoch time of the same round. Each runner measures the CPU time the rest of the machine used during its
epochs (from /proc/stat): a run where other processes used more than `--max-other` of a core is repeated.
"""
from __future__ import annotations
import argparse, datetime, fcntl, json, os, platform, pty, statistics, subprocess, sys, tempfile, time
from contextlib import contextmanager, nullcontext
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE/'results'
# glibc keeps freed memory instead of handing it back: many fewer page faults, steadier timings (BENCHMARKING.md)
ENV = dict(GLIBC_TUNABLES='glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=68719476736')
PEERS = ('fastai', 'lightning')
VENVS = HERE/'_venvs'
# Each peer lives in its own venv (bench/_venvs/PEER), torch pinned first: an unpinned torch pulls a multi-GB CUDA
# build. fastai is installed without its dependencies, then with those it declares except torchvision (it does not
# import next to the CPU torch here; `fastai.basics` does not need it) and spacy (text only).
TORCH = os.environ.get('TORCH', 'torch==2.13.0')
PEER_PKGS = dict(fastai='fastai>=2.8,<2.9', lightning='lightning>=2.6,<2.7')
PEER_SKIP = dict(fastai={'torch', 'torchvision', 'spacy'}, lightning={'torch'})
# what importing miniai.init, miniai.resnet and miniai.data needs (specifiers from settings.ini, unless the peer
# already brought the package: fastai needs fastcore 2, miniai pins fastcore<2 but imports fine with it)
MINIAI_IMPORT_DEPS = ('fastcore', 'fastprogress', 'datasets', 'matplotlib', 'numpy', 'pillow')


@contextmanager
def cpu_lock(path):
    "Hold an exclusive `flock` on `path` (a machine-wide lock that keeps other heavy jobs off the cores), if given"
    if not path: yield; return
    with open(path, 'a') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try: yield
        finally: fcntl.flock(f, fcntl.LOCK_UN)


def run_one(runner, args, show=False):
    """Run one runner in a fresh process with a terminal as its stdout (so `ProgressCB` draws its bars, as it would
    for a user); return its JSON result"""
    if runner.startswith('miniai-fast:'):  # e.g. miniai-fast:compile+channels_last+fused: another fast configuration
        runner, opts = runner.split(':')
        args = args + ['--fast', opts.replace('+', ',')]
    elif runner.startswith(('files:w', 'files-nocache:w')):  # e.g. files:w1: the file path with 1 worker process (recorded as files-w1)
        runner, w = runner.split(':w')
        args = args + ['--workers', w]
    elif ':' in runner:  # e.g. miniai:none, miniai:bar: the Learner without ProgressCB, or without its plot
        runner, progress = runner.split(':')
        args = args + ['--progress', progress]
    with tempfile.TemporaryDirectory(prefix='miniai-bench-') as tmp:
        out = Path(tmp)/'result.json'
        cmd = [sys.executable, str(HERE/'run.py'), runner, '--json', str(out), '--plot-dir', tmp] + args
        if runner in PEERS:
            py = VENVS/runner/'bin'/'python'
            if not py.exists(): raise SystemExit(f'{runner}: no venv at {VENVS/runner}: run `python bench/bench.py setup-peers` (or `make bench-peers`)')
            cmd = [str(py), str(HERE/'peers.py'), runner, '--json', str(out)] + args
        env = {**os.environ, **ENV, 'PYTHONPATH': str(ROOT)}
        env.pop('MINIAI_SMALL', None)  # full data unless --small
        master, slave = pty.openpty()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env, cwd=ROOT)
        os.close(slave)
        log = bytearray()
        while True:  # drain the terminal: what a terminal would show
            try: chunk = os.read(master, 65536)
            except OSError: break  # EIO: the child closed the terminal
            if not chunk: break
            log += chunk
        os.close(master)
        rc = p.wait()
        if rc or not out.exists():
            sys.stderr.write(log.decode(errors='replace')[-4000:])
            raise SystemExit(f'{" ".join(cmd)} failed with status {rc}')
        if show: sys.stdout.write(log.decode(errors='replace'))
        return json.loads(out.read_text())


def disturbed(res, max_other):
    "Did other processes use more than `max_other` cores on average during the run's epochs?"
    wall = sum(e['wall_s'] for e in res['epochs'])
    return res['other_cpu_s'] > max_other*wall


def cmd_run(a):
    runners = a.runners.split(',')
    if 'raw' not in runners and not a.aug and not a.no_raw: runners = ['raw'] + runners
    a.device = getattr(a, 'device', 'cpu')
    tag = a.tag or f'{a.model}-{a.epochs}ep' + ('-files' if any(r.startswith('files') for r in runners) else '') + (f"-nfs{a.nfs.split(',')[-1]}" if a.nfs else '') + (f"-w{a.widths.split(',')[-1]}" if a.model == 'vgg' else '') + ('-aug' if a.aug else '') + (f'-erase{a.erase:g}' if a.erase else '') + ('-small' if a.small else '')
    args = ['--model', a.model, '--epochs', str(a.epochs), '--threads', str(a.threads)] + (['--small'] if a.small else []) + (['--aug'] if a.aug else [])
    if a.nfs: args += ['--nfs', a.nfs]
    if a.erase: args += ['--erase', str(a.erase)]
    if a.model == 'vgg': args += ['--widths', a.widths]
    if a.smooth: args += ['--smooth', str(a.smooth)]
    if a.wd != 0.01: args += ['--wd', str(a.wd)]
    if a.device != 'cpu': args += ['--device', a.device]
    RESULTS.mkdir(exist_ok=True)
    dest = Path(a.out) if a.out else RESULTS/f'{tag}.jsonl'
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    for r in range(a.rounds):
        order = runners if r % 2 == 0 else runners[::-1]
        with cpu_lock(a.lock):
            rows = []
            for runner in order:
                for attempt in range(a.retries + 1):
                    res = run_one(runner, args)
                    res.update(tag=tag, session=stamp, round=r, attempt=attempt, disturbed=disturbed(res, a.max_other))
                    rows.append(res)
                    if not res['disturbed']: break
                    print(f'  {runner}: disturbed (other processes used {res["other_cpu_s"]:.1f} CPU s); repeating', flush=True)
        with open(dest, 'a') as f:
            for res in rows: f.write(json.dumps(res) + '\n')
        ok = {res['runner']: res for res in rows if not res['disturbed']}
        raw = ok.get('raw')
        line = '  '.join(f"{k} {statistics.mean(v['epoch_s']):.2f}s" + (f" ({statistics.mean(v['epoch_s'])/statistics.mean(raw['epoch_s']):.3f})" if raw else '')
                         + f" acc {v['accuracy']:.4f}" for k, v in ok.items())
        print(f'{tag} round {r}: {line}', flush=True)
    print(f'wrote {dest}')


def load_results(paths):
    rows = []
    for p in paths:
        for line in Path(p).read_text().splitlines():
            if line.strip(): rows.append(json.loads(line))
    return rows


def summarize(rows):
    "Per tag and runner: median epoch time, median per-round ratio to raw, and the accuracy figures"
    out = {}
    for tag in dict.fromkeys(r['tag'] for r in rows):
        trs = [r for r in rows if r['tag'] == tag and not r['disturbed']]
        # a set where every run was disturbed (e.g. a single long accuracy run): its accuracy still counts, its times
        # are marked as disturbed in the table
        all_disturbed = not trs
        if all_disturbed: trs = [r for r in rows if r['tag'] == tag]
        rounds = {}
        for r in trs: rounds.setdefault((r['session'], r['round']), {})[r['runner']] = r
        runners = list(dict.fromkeys(r['runner'] for r in trs))
        res = {}
        for runner in runners:
            mine = [r for r in trs if r['runner'] == runner]
            ep = lambda r: statistics.mean(r['epoch_s'])
            ratios = [ep(rd[runner])/ep(rd['raw']) for rd in rounds.values() if runner in rd and 'raw' in rd]
            tratios = [statistics.mean(e['train_s'] for e in rd[runner]['epochs'])/statistics.mean(e['train_s'] for e in rd['raw']['epochs'])
                       for rd in rounds.values() if runner in rd and 'raw' in rd]
            nb = lambda r: -(-r['n_train']//r['bs']) + -(-r['n_valid']//r['bs'])  # batches per epoch (as for raw)
            extra = [(ep(rd[runner]) - ep(rd['raw']))/nb(rd['raw'])*1e6 for rd in rounds.values() if runner in rd and 'raw' in rd]
            res[runner] = dict(n=len(mine), extra_us=statistics.median(extra) if extra else None, epoch_s=statistics.median(ep(r) for r in mine),
                               img_s=statistics.median(statistics.mean(r['train_img_s']) for r in mine),
                               ratio=statistics.median(ratios) if ratios else None,
                               ratio_min=min(ratios) if ratios else None, ratio_max=max(ratios) if ratios else None,
                               train_ratio=statistics.median(tratios) if tratios else None,
                               acc=statistics.median(r['accuracy'] for r in mine),
                               tta=statistics.median(r['tta']['tta_accuracy'] for r in mine) if all(r.get('tta') for r in mine) else None,
                               loss=statistics.median(r['valid_loss'] for r in mine),
                               repeats=sum(1 for r in rows if r['tag'] == tag and r['runner'] == runner and r['disturbed']) - (len(mine) if all_disturbed else 0),
                               model=mine[0]['model'], epochs=len(mine[0]['epochs']), n_params=mine[0]['n_params'],
                               mem_ratios=[ep(rd[runner])/ep(rd['miniai']) for rd in rounds.values() if runner in rd and 'miniai' in rd]
                                          if runner.startswith('files') else None,
                               small=mine[0]['small'], disturbed=all_disturbed,
                               warmup=statistics.median(r['warmup_s'] for r in mine) if all('warmup_s' in r for r in mine) else None,
                               gflop_img=mine[0].get('train_gflop_per_img'),
                               gflops=statistics.median(statistics.mean(r['train_gflops']) for r in mine) if all('train_gflops' in r for r in mine) else None,
                               matmul=statistics.median(r['matmul_gflops'] for r in mine) if all('matmul_gflops' in r for r in mine) else None)
        out[tag] = res
    return out


def fmt_table(summary):
    lines = ['| run | runner | runs | epoch time (s, median) | ratio to raw (median of rounds; min-max) | training-pass ratio | extra time per batch (µs, median) | train images/s | valid loss | accuracy | disturbed runs repeated |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for tag, res in summary.items():
        for runner, s in res.items():
            ratio = '1 (reference)' if runner == 'raw' else ('n/a' if s['ratio'] is None else f"**{s['ratio']:.3f}** ({s['ratio_min']:.3f}-{s['ratio_max']:.3f})")
            xt = '' if runner == 'raw' or s['extra_us'] is None else f"{s['extra_us']:+.0f}"
            acc = f"{s['acc']:.4f}" + ('' if s['tta'] is None else f", TTA {s['tta']:.4f}")
            tr = '' if runner == 'raw' or s['train_ratio'] is None else f"{s['train_ratio']:.3f}"
            ep = f"{s['epoch_s']:.2f}" + (' (disturbed)' if s.get('disturbed') else '')
            lines.append(f"| {tag} | {runner} | {s['n']} | {ep} | {ratio} | {tr} | {xt} | {s['img_s']:.0f} | {s['loss']:.4f} | {acc} | {s['repeats']} |")
    return '\n'.join(lines)


def fmt_speed_table(summary):
    "Achieved GFLOP/s of the training passes against the same process's matrix product, and compile warm-up, where recorded"
    lines = []
    for tag, res in summary.items():
        for runner, s in res.items():
            if s['gflops'] is None: continue
            warm = '' if s['warmup'] is None else f"{s['warmup']:.1f}"
            lines.append(f"| {tag} | {runner} | {s['n']} | {s['gflop_img']:.4f} | {s['gflops']:.1f} | {s['matmul']:.1f} | "
                         f"{s['gflops']/s['matmul']:.0%} | {warm} |")
    if not lines: return ''
    return ('\n## Arithmetic speed and compile warm-up\n\n'
            'GFLOP per image of one training step (forward and backward of a full batch, counted by `torch.utils.flop_counter.FlopCounterMode`); '
            'the training pass\'s achieved GFLOP/s (that count times training images/s); a 2048x2048 float32 matrix product\'s GFLOP/s '
            'measured at the end of the same process; and, for compiled runs, the seconds spent compiling before the timed epochs '
            '(not included in the epoch times). Medians over runs.\n\n'
            '| run | runner | runs | GFLOP per image (training step) | achieved GFLOP/s | matmul GFLOP/s | share of matmul | compile warm-up (s) |\n'
            '|---|---|---|---|---|---|---|---|\n' + '\n'.join(lines) + '\n')


FILES_TARGET = 1.10  # the file path may take at most 10% more time per epoch than the in-memory path


def fmt_files_table(summary):
    "The file path (runner `files`) against the in-memory one (`miniai`), per-round ratios of epoch times"
    lines = []
    for tag, res in summary.items():
        for runner, s in res.items():
            r = s.get('mem_ratios')
            if not r: continue
            med = statistics.median(r)
            verdict = 'within' if med <= FILES_TARGET else 'over'
            workers = runner.split('-w')[1] if '-w' in runner else '0'
            lines.append(f"| {tag} | {runner} | {workers} | {len(r)} | **{med:.3f}** | {min(r):.3f}-{max(r):.3f} | {s['epoch_s']:.2f} | {res['miniai']['epoch_s']:.2f} | "
                         f"{s['acc']:.4f} / {res['miniai']['acc']:.4f} | {verdict} the target (at most {FILES_TARGET:.2f}) |")
    if not lines: return ''
    return ('\n## Training from image files against training from memory\n\n'
            'Runner `files` (lesson 15: PNG files on disk decoded once by `cache_items`, per-item transforms after the cached part, `to_dls`; '
            '`files-nocache`: every PNG decoded every epoch; `-wN`: with N worker processes) against '
            '`miniai` (in-memory tensors), same Learner, model, batches and schedule; ratio of epoch times in the same round.\n\n'
            '| run | runner | workers | rounds | files / memory (median) | min-max | files epoch (s) | memory epoch (s) | accuracy files / memory | target |\n'
            '|---|---|---|---|---|---|---|---|---|---|\n' + '\n'.join(lines) + '\n')


def machine():
    cpu = 'unknown CPU'
    try: cpu = next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): pass
    try: mem = int(next(l.split()[1] for l in open('/proc/meminfo') if l.startswith('MemTotal')))/2**20
    except (OSError, StopIteration): mem = float('nan')
    return f'{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.platform()}'


def versions():
    import importlib.metadata as md
    def v(n):
        try: return md.version(n)
        except md.PackageNotFoundError: return 'not installed'
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return f"Python {platform.python_version()}, torch {v('torch')}, miniai {v('miniai')} (git {commit or '?'}), datasets {v('datasets')}, fastprogress {v('fastprogress')}"


def fmt_checks(checks):
    "The lines of bench/gpu_check.py's checks: one row per check and run"
    if not checks: return ''
    lines = [f"| {c['session']} | {c['device']}{' (dry run)' if c.get('dry_run') and 'dry run' not in c['device'] else ''} | {c['check']} | "
             f"{'passed' if c['ok'] else 'FAILED'} | "
             + ', '.join(f'{k} {v:.4g}' if isinstance(v, float) else f'{k} {v}' for k, v in c.items()
                         if k not in ('check', 'ok', 'device', 'session', 'dry_run', 'torch', 'seconds')) + ' |' for c in checks]
    return ('\n## GPU checks (bench/gpu_check.py)\n\n| measured | device | check | result | details |\n|---|---|---|---|---|\n'
            + '\n'.join(lines) + '\n')


def cmd_report(a):
    paths = sorted(RESULTS.glob('*.jsonl')) if not a.inputs else a.inputs
    rows = load_results(paths)
    checks = [r for r in rows if 'check' in r]  # bench/gpu_check.py's check lines
    rows = [r for r in rows if 'tag' in r]  # the runs of `bench.py run` (ending.py and augment_files.py keep other records there)
    if not rows: raise SystemExit(f'no results in {RESULTS}: run `python bench/bench.py run` first')
    summary = summarize(rows)
    table = fmt_table(summary)
    sessions = sorted({r['session'] for r in rows})
    commits = sorted({r['git'] for r in rows if r.get('git')})
    pv = sorted({f"{r['runner']}: torch {r['torch']}" + (f", {r['framework']}" if r.get('framework') else '') for r in rows if r['runner'] in PEERS})
    head = f"""# miniai benchmark results

Written by `python bench/bench.py report` from the runs recorded in `bench/results/*.jsonl` (see bench/README.md).

- Machine: {machine()}; torch threads: {sorted({r['threads'] for r in rows})}
- Versions: {versions()}; measured miniai commits: {', '.join(commits) or 'not recorded'} (earlier runs: not recorded){'; peers: ' + '; '.join(pv) if pv else ''}
- Measured: {', '.join(sessions)} (UTC){'; report written ' + datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M') + ' UTC'}
- Fashion-MNIST, full data (60000 training, 10000 validation images), batch size {sorted({r['bs'] for r in rows})}, AdamW with
  torch's `OneCycleLR` stepped every batch, same initial weights and data order for every runner.
- Each run is a fresh process. "ratio to raw" is the median over rounds of (runner's epoch time / `raw`'s epoch time
  in the same round); an epoch is a training pass plus a validation pass. "training-pass ratio" leaves out validation.
  Runs during which other processes used more than 0.03 of a core (`--max-other`; 0.1 before 2026-12-07) were dropped and repeated.

"""
    text = head + table + '\n' + fmt_speed_table(summary) + fmt_files_table(summary) + fmt_checks(checks)
    if a.notes and Path(a.notes).exists(): text += '\n' + Path(a.notes).read_text()
    Path(a.dest).write_text(text)
    print(table)
    print(f'wrote {a.dest}')


def cmd_quick(a):
    "Every runner once on the small subset, one epoch: checks that the benchmark runs, measures nothing"
    runners = ['raw', 'miniai', 'miniai-hf', 'files', 'files-nocache'] + [p for p in PEERS if (VENVS/p/'bin'/'python').exists()]
    models = a.models.split(',')
    ctx = cpu_lock(a.lock)
    with ctx:
        for model in models:
            for runner in runners:
                res = run_one(runner, ['--model', model, '--small', '--epochs', '1'])
                print(f"quick {model} {runner}: epoch {res['epoch_s'][0]:.2f}s, valid loss {res['valid_loss']:.4f}, "
                      f"accuracy {res['accuracy']:.4f}", flush=True)


def _req_name(req):
    "The distribution name at the start of a requirement string, normalised ('Pillow>=9' -> 'pillow')"
    import re
    return re.split(r'[\s;<>=!~\[(]', req.strip(), maxsplit=1)[0].lower().replace('_', '-')


def setup_peer(peer, python=sys.executable):
    "Create bench/_venvs/PEER: torch pinned first, then the framework, then what importing miniai's models needs"
    import configparser, shlex
    venv = VENVS/peer
    py = venv/'bin'/'python'
    if not py.exists(): subprocess.run([python, '-m', 'venv', str(venv)], check=True)
    with tempfile.NamedTemporaryFile('w', suffix='.txt', prefix='peer-constraints-', delete=False) as f:
        f.write(TORCH + '\n')  # every pip call below is held to this torch: nothing may replace it with a CUDA build
        cons = f.name
    def pip(*args):
        cmd = [str(py), '-m', 'pip', 'install', '-q', '-c', cons, *args]
        print('+', ' '.join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    def installed(code):
        return subprocess.run([str(py), '-c', code], capture_output=True, text=True, check=True).stdout.split()
    try:
        pip(TORCH)
        if peer == 'fastai':
            pip('--no-deps', PEER_PKGS[peer])
            reqs = installed("import importlib.metadata as m; print('\\n'.join(r.replace(' ', '') for r in m.requires('fastai') if 'extra' not in r))")
            pip(*[r for r in reqs if _req_name(r) not in PEER_SKIP[peer]])
        else: pip(PEER_PKGS[peer])
        cfg = configparser.ConfigParser(interpolation=None); cfg.read(ROOT/'settings.ini')
        have = set(installed("import importlib.metadata as m; print(' '.join(d.metadata['Name'].lower().replace('_', '-') for d in m.distributions()))"))
        deps = [r for r in shlex.split(cfg['DEFAULT']['requirements']) if _req_name(r) in MINIAI_IMPORT_DEPS and _req_name(r) not in have]
        if deps: pip(*deps)
    finally: os.unlink(cons)
    check = {'fastai': 'import fastai.basics', 'lightning': 'import lightning'}[peer]
    code = (f"{check}; import miniai.init, miniai.resnet, miniai.data; import importlib.metadata as m; "
            f"print(' '.join(n + ' ' + m.version(n) for n in ('torch', {peer!r}, 'fastcore', 'fastprogress', 'numpy')))")
    r = subprocess.run([str(py), '-c', code], env={**os.environ, 'PYTHONPATH': str(ROOT)}, capture_output=True, text=True)
    if r.returncode: raise SystemExit(f'{peer}: the venv does not import what bench/peers.py needs:\n{r.stderr[-3000:]}')
    print(f'{peer}: {venv}: {r.stdout.strip()}', flush=True)


def cmd_setup_peers(a):
    for peer in a.peers.split(','):
        if peer not in PEERS: raise SystemExit(f'unknown peer {peer!r}: choose from {",".join(PEERS)}')
        setup_peer(peer)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    r = sub.add_parser('run', help='interleaved rounds of the runners; appends their JSON lines to bench/results/TAG.jsonl')
    r.add_argument('--model', choices=['cnn', 'resnet', 'linear', 'vgg'], default='cnn')
    r.add_argument('--runners', default='raw,miniai,miniai-hf',
                   help='comma-separated; raw is always included (unless --no-raw); files: lesson 15 from PNG files decoded once (files-nocache: decoded every epoch; files:w1 with 1 worker process); miniai:bar and miniai:none: ProgressCB without its plot, no ProgressCB; fastai, lightning: the peers (after setup-peers)')
    r.add_argument('--rounds', type=int, default=5)
    r.add_argument('--no-raw', action='store_true', help='leave out the raw reference, e.g. for --runners miniai,files (files against memory)')
    r.add_argument('--epochs', type=int, default=1)
    r.add_argument('--threads', type=int, default=2)
    r.add_argument('--device', default='cpu', help='where the runners train (cuda: see bench/gpu_check.py)')
    r.add_argument('--small', action='store_true')
    r.add_argument('--aug', action='store_true', help="lesson 13's augmentation and TTA (give --runners miniai)")
    r.add_argument('--erase', type=float, default=0., help="with --aug: lesson 13's random erasing too (rectangle size, e.g. 0.2)")
    r.add_argument('--nfs', default=None, help="resnet: get_resnet's channels, e.g. 16,32,64,128,256,512 (tagged -nfsLAST)")
    r.add_argument('--widths', default='24,48,96', help="vgg: the speedrun network's stage widths (tagged -wLAST)")
    r.add_argument('--smooth', type=float, default=0., help='label smoothing (miniai runners)')
    r.add_argument('--wd', type=float, default=0.01, help="AdamW's weight decay")
    r.add_argument('--tag', default=None, help='the name of this set of runs (default: MODEL-Nep)')
    r.add_argument('--out', default=None, help='the JSON-lines file to append to (default: bench/results/TAG.jsonl)')
    r.add_argument('--retries', type=int, default=2, help='repeat a disturbed run at most this many times')
    r.add_argument('--max-other', type=float, default=0.03, help='a run is disturbed when other processes used more cores than this (on average over its epochs); quiet runs here measure 0.002-0.012, and runs at 0.07-0.09 took 27-31%% longer')
    r.add_argument('--lock', default=os.environ.get('BENCH_LOCK'), help='hold an flock on this file during each round')
    r.set_defaults(f=cmd_run)
    q = sub.add_parser('report', help='bench/results/*.jsonl -> bench/RESULTS.md')
    q.add_argument('inputs', nargs='*')
    q.add_argument('--dest', default=str(HERE/'RESULTS.md'))
    q.add_argument('--notes', default=str(HERE/'notes.md'), help='markdown appended below the table')
    q.set_defaults(f=cmd_report)
    k = sub.add_parser('quick', help='every runner once, small data, one epoch')
    k.add_argument('--models', default='cnn')
    k.add_argument('--lock', default=os.environ.get('BENCH_LOCK'))
    k.set_defaults(f=cmd_quick)
    sp = sub.add_parser('setup-peers', help='create the venvs of the peer runners under bench/_venvs/ (pip, network)')
    sp.add_argument('--peers', default=','.join(PEERS))
    sp.set_defaults(f=cmd_setup_peers)
    a = p.parse_args(argv)
    a.f(a)


if __name__ == '__main__': main()
