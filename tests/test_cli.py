"""The `miniai-train` command (miniai.cli), run as a user runs it: in its own process, on the small data.

The same command starts three ways: `miniai-train` (the console script that settings.ini declares),
`python -m miniai` (lesson 08c) and `python -m miniai.cli`. Each is run here. Every test starts Python and
torch at least once (seconds each): the slow tier, which `make test` runs and `make test-fast` does not.
"""
import configparser, os, re, subprocess, sys
from pathlib import Path
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PNG = b'\x89PNG\r\n\x1a\n'
OPTIONS = ['--epochs', '--bs', '--lr', '--small', '--out', '--device', '--eager']

def _env(): return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]), MPLBACKEND='agg')

def run_cli(*args, cwd, module='miniai', timeout=600):
    "Run `python -m MODULE ARGS` with this checkout's miniai, output piped (as in a log file)"
    return subprocess.run([sys.executable, '-m', module, *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)

def test_small_run_writes_plots_and_prints_accuracy(tmp_path):
    r = run_cli('--small', '--epochs', '2', '--out', 'plots', '--device', 'cpu', cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    acc = re.search(r'final validation accuracy: (\d\.\d{4})', r.stdout)
    assert acc, r.stdout
    assert 0.5 < float(acc.group(1)) <= 1, 'two epochs on 6,000 images should be far above chance (0.1)'
    rows = re.findall(r'^\d\.\d{3} +\d+\.\d{3} +(\d) +(train|eval) *$', r.stdout, flags=re.M)
    assert rows == [('0', 'train'), ('0', 'eval'), ('1', 'train'), ('1', 'eval')], r.stdout  # a line per pass
    assert '\r' not in r.stdout, 'no progress-bar redraws when the output is not a terminal'
    for name in ('loss.png', 'predictions.png'):
        png = (tmp_path/'plots'/name).read_bytes()
        assert png.startswith(PNG) and len(png) > 5000, name
    assert 'Traceback' not in r.stderr

# Each case starts Python and torch (seconds): a few here; nbs/08a_cli.ipynb checks more messages in-process.
@pytest.mark.parametrize('module, args, says', [
    ('miniai', ['--epochs', '0'], "argument --epochs: '0' is not a positive integer"),
    ('miniai.cli', ['--epcohs', '3'], 'unrecognized arguments: --epcohs 3'),
    ('miniai.cli', ['--device', 'gpu'], "argument --device: device='gpu': not a device torch knows"),
])
def test_bad_argument_gives_usage_not_traceback(tmp_path, module, args, says):
    r = run_cli(*args, cwd=tmp_path, module=module, timeout=120)
    assert r.returncode == 2
    assert r.stderr.startswith('usage: miniai-train'), r.stderr
    assert says in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert r.stdout == '' and not any(tmp_path.iterdir()), 'nothing runs, nothing is written'

def test_out_that_is_a_file(tmp_path):
    (tmp_path/'out').write_text('not a folder')
    r = run_cli('--small', '--out', 'out', cwd=tmp_path, timeout=120)
    assert r.returncode == 2
    assert r.stderr.startswith('usage: miniai-train'), r.stderr
    assert "argument --out: 'out' is a file, not a folder" in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert r.stdout == '', 'it fails before training'

def _console_script():
    "The `miniai-train = module:function` that settings.ini declares, run as the script pip writes runs it"
    cfg = configparser.ConfigParser(delimiters=['='])
    cfg.read(ROOT/'settings.ini')
    scripts = dict(s.split('=') for s in cfg['DEFAULT']['console_scripts'].split())
    mod, fn = scripts['miniai-train'].split(':')
    return [sys.executable, '-c', f'import sys; from {mod} import {fn}; sys.exit({fn}())']

@pytest.mark.parametrize('how', ['console script', 'python -m miniai', 'python -m miniai.cli'])
def test_help_every_way_to_start(tmp_path, how):
    cmd = {'console script': _console_script(), 'python -m miniai': [sys.executable, '-m', 'miniai'],
           'python -m miniai.cli': [sys.executable, '-m', 'miniai.cli']}[how]
    r = subprocess.run([*cmd, '--help'], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr
    assert r.stdout.startswith('usage: miniai-train') and 'Train the lesson CNN on Fashion-MNIST' in r.stdout, r.stdout
    assert all(o in r.stdout for o in OPTIONS), r.stdout
    assert not any(tmp_path.iterdir()), 'help writes nothing'

def test_fast_path_is_the_default_and_eager_one_flag_away(tmp_path, capsys):
    "By default the CNN trains channels-last with fused AdamW (lesson 14); --eager gives plain training; both learn alike"
    import torch
    from miniai.cli import parse_args, train
    assert parse_args([]).eager is False and parse_args(['--eager']).eager is True
    res = {}
    for eager in (False, True):
        torch.manual_seed(0)
        learn, acc = train(epochs=1, small=True, out=tmp_path/str(eager), device='cpu', eager=eager)
        w = learn.model[1][0].weight  # 16x8x3x3: the first conv (one input channel) is contiguous in both layouts
        assert w.is_contiguous(memory_format=torch.channels_last) is (not eager) and w.ndim == 4
        assert learn.opt.defaults['fused'] is (None if eager else True)
        res[eager] = acc
    out = capsys.readouterr().out
    assert 'fast path (channels-last, fused AdamW; --eager turns it off)' in out and ', eager\n' in out, out
    assert abs(res[False] - res[True]) < 0.03, res  # the same training up to float rounding: a small drift in accuracy at most
