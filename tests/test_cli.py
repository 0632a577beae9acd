"""The `miniai-train` command (miniai.cli), run as a user runs it: in its own process, on the small data."""
import configparser, importlib, os, re, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
PNG = b'\x89PNG\r\n\x1a\n'

def run_cli(*args, cwd, timeout=600):
    "Run `python -m miniai.cli ARGS` with this checkout's miniai, output piped (as in a log file)"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]), MPLBACKEND='agg')
    return subprocess.run([sys.executable, '-m', 'miniai.cli', *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)

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

# Each case starts Python and torch (seconds): two here; nbs/08a_cli.ipynb checks more messages in-process.
@pytest.mark.parametrize('args, says', [
    (['--epochs', '0'], "argument --epochs: '0' is not a positive integer"),
    (['--epcohs', '3'], 'unrecognized arguments: --epcohs 3'),
])
def test_bad_argument_gives_usage_not_traceback(tmp_path, args, says):
    r = run_cli(*args, cwd=tmp_path, timeout=120)
    assert r.returncode == 2
    assert r.stderr.startswith('usage: miniai-train'), r.stderr
    assert says in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert r.stdout == '' and not any(tmp_path.iterdir()), 'nothing runs, nothing is written'

def test_out_that_is_a_file(tmp_path):
    (tmp_path/'out').write_text('not a folder')
    r = run_cli('--small', '--out', 'out', cwd=tmp_path, timeout=120)
    assert r.returncode == 1
    assert r.stderr.startswith('miniai-train: ') and 'out' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert 'training' not in r.stdout, 'it fails before training'

def test_console_script_declared():
    cfg = configparser.ConfigParser(delimiters=['='])
    cfg.read(ROOT/'settings.ini')
    scripts = dict(s.split('=') for s in cfg['DEFAULT']['console_scripts'].split())
    mod, fn = scripts['miniai-train'].split(':')
    assert callable(getattr(importlib.import_module(mod), fn))
