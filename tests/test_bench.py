"""The benchmark's premise, checked cheaply: the hand-written loop and the miniai Learner do the same computation.

No timing here (timed tests are flaky on shared machines): `make bench` measures, this only checks that the
runners run and that `raw` and `miniai`, from the same weights and data order, end at the same validation loss.
"""
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def run_bench(runner):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]), MPLBACKEND='agg')
    r = subprocess.run([sys.executable, str(ROOT/'bench'/'run.py'), runner, '--small'], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])

def test_raw_and_learner_compute_the_same():
    raw, learn = run_bench('raw'), run_bench('miniai')
    assert raw['n_train'] == learn['n_train'] and raw['n_params'] == learn['n_params']
    assert len(raw['epoch_s']) == len(learn['epoch_s']) == 1
    # same weights, same batches in the same order, same optimizer and schedule: the same result, to rounding
    assert abs(raw['valid_loss'] - learn['valid_loss']) < 1e-4, (raw['valid_loss'], learn['valid_loss'])
    assert raw['accuracy'] == learn['accuracy'] > 0.3
