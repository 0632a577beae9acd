"""The benchmark's premise, checked cheaply: the hand-written loop and the miniai Learner do the same computation.

No timing here (timed tests are flaky on shared machines): `make bench` measures, this only checks that the
runners run and that `raw` and `miniai`, from the same weights and data order, end at the same validation loss.
The slow tier: `make test` runs these, `make test-fast` does not.
"""
import functools, json, os, subprocess, sys
import pytest
from pathlib import Path

pytestmark = pytest.mark.slow  # each test trains in fresh processes: minutes in all

ROOT = Path(__file__).resolve().parent.parent

@functools.cache  # runs are seeded: a run that several tests compare against (raw, miniai) is made once per session
def run_bench(runner, *args, script='run.py'):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]), MPLBACKEND='agg')
    r = subprocess.run([sys.executable, str(ROOT/'bench'/script), *([runner] if runner else []), '--small', *args], cwd=ROOT, env=env,
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

def run_peer(peer, *args):
    py = ROOT/'bench'/'_venvs'/peer/'bin'/'python'
    if not py.exists(): pytest.skip(f'no {peer} venv at {py.parent.parent} (optional: `make bench-peers` makes it)')
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND='agg')
    r = subprocess.run([str(py), str(ROOT/'bench'/'peers.py'), peer, '--small', *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])

@pytest.mark.parametrize('peer', ['fastai', 'lightning'])
def test_peer_runs_the_same_training(peer):
    "The optional peers (bench/peers.py, in bench/_venvs/PEER): skipped when their venv is missing"
    res, raw = run_peer(peer), run_bench('raw')
    assert res['framework'].startswith(peer) and len(res['epoch_s']) == 1
    assert (res['n_train'], res['n_valid'], res['n_params']) == (raw['n_train'], raw['n_valid'], raw['n_params'])
    if peer == 'lightning':  # AdamW + OneCycleLR per step, same batches: raw's computation
        assert abs(res['valid_loss'] - raw['valid_loss']) < 1e-4, (res['valid_loss'], raw['valid_loss'])
    else:  # fastai's own Adam and one-cycle schedule (one step behind torch's): close, not equal
        assert abs(res['valid_loss'] - raw['valid_loss']) < 0.3, (res['valid_loss'], raw['valid_loss'])
    assert res['accuracy'] > 0.3

def test_files_runner_computes_what_memory_does():
    "Lesson 15's file path (PNG files, per-item transforms) gives the in-memory runner's batches: the same result"
    files, mem = run_bench('files'), run_bench('miniai')
    assert (files['n_train'], files['n_valid'], files['n_params']) == (mem['n_train'], mem['n_valid'], mem['n_params'])
    # same weights, same images (PNG is lossless) in the same order; only the validation batch size differs
    assert abs(files['valid_loss'] - mem['valid_loss']) < 1e-4, (files['valid_loss'], mem['valid_loss'])
    assert files['accuracy'] == mem['accuracy'] > 0.3

def test_fast_runner_computes_what_raw_does():
    "miniai-fast (lesson 14's fast path; for the small CNN channels-last and fused AdamW) trains what raw trains, up to rounding"
    raw, fast = run_bench('raw'), run_bench('miniai-fast')
    assert fast['runner'] == 'miniai-fast' and fast['fast'] == ['channels_last', 'fused'] and 'warmup_s' not in fast
    assert abs(raw['valid_loss'] - fast['valid_loss']) < 1e-3, (raw['valid_loss'], fast['valid_loss'])
    assert abs(raw['accuracy'] - fast['accuracy']) < 0.01
    # the FLOP count of a training step is the model's, whatever the runner; the matmul reference is measured in each run
    assert raw['train_gflop_per_img'] == fast['train_gflop_per_img'] > 0 and fast['matmul_gflops'] > 1

def test_speedrun_network_in_the_learner_computes_what_raw_does():
    "`--model vgg` (the speedrun's network) with `--wd`: the Learner and the loop train it alike, eagerly"
    # two epochs: after one epoch of the 10% subset (23 steps at the peak learning rate 4e-3) it validated at 0.199,
    # raw and Learner alike, while training batches were 64% right; after two epochs 0.833, after three 0.862
    args = ('--model', 'vgg', '--wd', '0.05', '--epochs', '2')
    raw, learn = run_bench('raw', *args), run_bench('miniai', *args)
    assert raw['n_params'] == learn['n_params'] == 167794 and raw['widths'] == '24,48,96' and raw['wd'] == 0.05
    assert abs(raw['valid_loss'] - learn['valid_loss']) < 1e-4, (raw['valid_loss'], learn['valid_loss'])
    assert raw['accuracy'] == learn['accuracy'] > 0.8

def test_speedrun_runs_its_recipe():
    "bench/speedrun.py on the 10% subset, three epochs, eagerly: one JSON record with the recipe it ran and an accuracy"
    # three epochs: after one (23 steps) the accuracy still depends much on the seed (0.57 and 0.70 seen)
    res = run_bench(None, '--epochs', '3', '--no-compile', '--seed', '3', script='speedrun.py')
    assert res['seed'] == 3 and res['small'] and res['recipe']['epochs'] == 3 and res['recipe']['compile'] is False
    assert res['recipe']['net'] == 'plain' and res['inductor_cache'] == 'eager'  # eager: no compile cache to speak of
    assert res['n_params'] == 167794 and 0.75 < res['accuracy'] <= 1 and 0.75 < res['accuracy_no_tta'] <= 1
    assert 0 < res['train_s'] < res['time_s']

def test_gpu_check_dry_run_and_report(tmp_path):
    "bench/gpu_check.py's checks pass on the CPU with small sizes, and bench.py report reads what it wrote"
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND='agg')
    r = subprocess.run([sys.executable, str(ROOT/'bench'/'gpu_check.py'), '--dry-run', '--out', str(tmp_path)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    checks = [json.loads(l) for l in (tmp_path/'gpu-check.jsonl').read_text().splitlines()]
    assert [c['check'] for c in checks] == ['device', 'fp16', 'accelerate', 'checkpoint'], checks
    assert all(c['ok'] and c['dry_run'] for c in checks), checks
    runs = [json.loads(l) for l in (tmp_path/'gpu-dry-run.jsonl').read_text().splitlines()]
    assert {x['runner'] for x in runs} == {'raw', 'miniai', 'miniai-fast'} and all(x['device'] == 'cpu' for x in runs)
    dest = tmp_path/'RESULTS.md'
    r = subprocess.run([sys.executable, str(ROOT/'bench'/'bench.py'), 'report', *map(str, sorted(tmp_path.glob('*.jsonl'))),
                        '--dest', str(dest), '--notes', str(tmp_path/'none.md')], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    text = dest.read_text()
    assert '## GPU checks' in text and '| fp16 | passed |' in text and '| gpu-dry-run | miniai-fast |' in text, text


def test_profile_step_times_a_probe_and_sorts_operators_by_kind(tmp_path):
    "bench/profile_step.py: one eager probe of the ResNet step writes its timing; operator names land in the right kind"
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent/'bench'))
    import profile_step
    out = tmp_path/'p.json'
    profile_step.main(['--probes', 'eager', '--steps', '2', '--warm', '1', '--no-profile', '--json', str(out)])
    r = json.loads(out.read_text())['probes'][0]
    assert r['probe'] == 'eager' and r['bs'] == 256 and r['ms_per_step'] > 0 and r['us_per_image'] == pytest.approx(r['ms_per_step'] * 1000 / 256)
    kinds = {n: profile_step.kind(n) for n in ('aten::convolution_backward', 'aten::mkldnn_convolution', 'aten::_fused_adamw_',
                                               'aten::nll_loss_forward', 'aten::addmm', 'aten::copy_', '## Call CompiledFxGraph fzuxv',
                                               'aten::native_batch_norm_backward', 'aten::leaky_relu')}
    assert kinds == {'aten::convolution_backward': 'convolutions (oneDNN)', 'aten::mkldnn_convolution': 'convolutions (oneDNN)',
                     'aten::_fused_adamw_': 'optimizer', 'aten::nll_loss_forward': 'loss',
                     'aten::addmm': 'matrix products (linear layer)', 'aten::copy_': 'other',
                     '## Call CompiledFxGraph fzuxv': "Inductor's fused kernels",
                     'aten::native_batch_norm_backward': 'BatchNorm (eager)', 'aten::leaky_relu': 'activations (eager)'}


def test_ending_saves_probabilities_and_ensembles_with_them(tmp_path):
    "bench/ending.py (lesson 13's ending) on the 10% subset: each model's TTA probabilities saved, and a later run's ensemble takes them in"
    args = ['--epochs', '1', '--nfs', '8,16,32,64,128,256', '--out', str(tmp_path/'e.jsonl'), '--probs-dir', str(tmp_path)]
    first = run_bench(None, *args, '--seeds', '1', script='ending.py')
    assert [m['seed'] for m in first['models']] == [1] and 'ensemble_tta_accuracy' not in first  # one model: no ensemble
    saved = tmp_path/'e1-s1.pt'
    assert first['models'][0]['probs'].endswith('e1-s1.pt') and saved.is_file()
    second = run_bench(None, *args, '--seeds', '2', '--with', str(saved), script='ending.py')
    assert second['ensemble_with'] and 0.3 < second['ensemble_tta_accuracy'] <= 1
    import torch
    probs = torch.load(saved)
    assert probs.shape == (first['n_valid'], 10) and torch.allclose(probs.sum(1), torch.ones(len(probs)), atol=1e-4)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, str(ROOT/'bench'/'ending.py'), '--small', '--with', str(tmp_path/'none.pt')], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and 'no such file' in r.stderr and 'none.pt' in r.stderr, r.stderr


def test_fast_default_follows_the_cpu():
    "bench/run.py's miniai-fast default for the ResNet: bf16 with channels-last on a CPU with bf16 instructions, compiled float32 elsewhere"
    sys.path.insert(0, str(ROOT/'bench'))
    import run
    assert run.fast_default('resnet', 'cuda') == run.FAST['resnet'] == 'compile,fused'
    assert run.fast_default('cnn') == run.FAST['cnn']  # the small CNN: float32 everywhere
    expect = 'channels_last,fused,amp' if run.cpu_bf16() else 'compile,fused'
    assert run.fast_default('resnet') == expect and run.parse_args(['miniai-fast', '--model', 'resnet']).fast == expect.split(',')
