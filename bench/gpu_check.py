"""miniai on one CUDA GPU, checked in one go: `python bench/gpu_check.py` (about 5-8 minutes on one GPU).

NOT YET RUN ON A GPU. It was written on a CPU-only machine; only its `--dry-run` has run (on the CPU, small data,
seconds; `tests/test_bench.py` runs it). The first run on a CUDA machine should be checked by hand, and its figures put
in bench/RESULTS.md with the card's name (`python bench/bench.py report` prints the card in the GPU section).

Each check writes one JSON line (`"check": NAME, "ok": true/false`, what was measured) to `gpu-check.jsonl` in
`--out` (default bench/results/), and `bench.py report` lists them; the timing rounds go to `gpu-resnet-1ep.jsonl`
there in the usual format of `bench/run.py`, so the report's tables include them. Checks:

1. `device`: `DeviceCB` moves the model to the GPU and each batch with it; one epoch of the lesson CNN learns.
2. `fp16`: `MixedPrecision()`'s defaults on CUDA are fp16 with a `GradScaler`; the convolutions run in fp16, the losses
   and the weights stay float32, and 20 training batches of the lesson ResNet give fp32's losses within a tolerance.
3. `accelerate`: `AccelerateCB()` on one GPU: accelerate picks the GPU, one epoch learns, the Learner gets its model back.
4. `checkpoint`: `CheckpointCB` saves during a fit on the GPU; a second process that sees no GPU
   (`CUDA_VISIBLE_DEVICES=`) loads the file into a CPU model and gets the same predictions.
5. ResNet epoch: `raw` (hand-written eager loop, data on the GPU), `miniai` (the Learner, eager), `miniai-fast` (the
   fast path's default: compile, fused AdamW) and `miniai-fast:channels_last+compile+fused+amp` (with fp16 mixed
   precision), interleaved rounds of one epoch each (`bench.py run --device cuda`).

    python bench/gpu_check.py                 # on a machine with a CUDA GPU
    python bench/gpu_check.py --rounds 5      # more timing rounds
    python bench/gpu_check.py --dry-run --out /tmp/x    # the same code on the CPU, small data, seconds: checks the script
"""
from __future__ import annotations
import argparse, datetime, json, os, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--dry-run', action='store_true', help='on the CPU, small data, tiny sizes: checks that the script runs (seconds)')
    p.add_argument('--out', type=Path, default=HERE/'results', help='folder for gpu-check.jsonl and gpu-resnet-1ep.jsonl')
    p.add_argument('--rounds', type=int, default=3, help='interleaved timing rounds of the ResNet epoch')
    p.add_argument('--skip-timing', action='store_true', help='only the four checks')
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    import torch
    if not a.dry_run and not torch.cuda.is_available():
        raise SystemExit('gpu_check: torch sees no CUDA GPU here (torch.cuda.is_available() is False). Run it on a CUDA '
                         'machine with a CUDA build of torch, or pass --dry-run to check the script on the CPU.')
    dev = 'cpu' if a.dry_run else 'cuda'
    a.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    card = torch.cuda.get_device_name(0) if dev == 'cuda' else 'CPU (dry run)'
    print(f'gpu_check on {card}, torch {torch.__version__}', flush=True)
    results = []
    for check in (check_device, check_fp16, check_accelerate, check_checkpoint):
        t = time.perf_counter()
        try: res = dict(ok=True, **check(dev, a.dry_run))
        except AssertionError as e: res = dict(ok=False, error=f'AssertionError: {e}')
        res.update(check=check.__name__.removeprefix('check_'), device=card, session=stamp, seconds=round(time.perf_counter() - t, 1),
                   dry_run=a.dry_run, torch=torch.__version__)
        print(json.dumps(res), flush=True)
        results.append(res)
        with open(a.out/'gpu-check.jsonl', 'a') as f: f.write(json.dumps(res) + '\n')
    if not a.skip_timing: time_resnet(a, dev)
    bad = [r['check'] for r in results if not r['ok']]
    print('gpu_check: ' + (f'FAILED: {", ".join(bad)}' if bad else 'all checks passed'), flush=True)
    return 1 if bad else 0


def _dls(dry_run, bs=256):
    from miniai.datasets import fashion_dls
    return fashion_dls(bs=bs, small=dry_run)


def _learner(model, dls, cbs, lr=3e-3):
    import torch, torch.nn.functional as F
    from miniai.learner import Learner
    return Learner(model, dls, F.cross_entropy, lr=lr, opt_func=torch.optim.AdamW, cbs=cbs)


def check_device(dev, dry_run):
    "DeviceCB puts the model and every batch on the device; the lesson CNN learns in one epoch"
    import torch
    from miniai.activations import set_seed
    from miniai.cli import fashion_cnn
    from miniai.learner import Accuracy, Callback, DeviceCB, MetricsCB, TrainCB
    seen = set()
    class Where(Callback):
        order = DeviceCB.order + 1
        def before_batch(self, learn): seen.add(learn.batch[0].device.type)
    set_seed(1)
    metrics = MetricsCB(Accuracy())
    metrics.log_fn = lambda row: None
    learn = _learner(fashion_cnn(), _dls(dry_run), [TrainCB(), DeviceCB(dev), metrics, Where()])
    learn.fit(1)
    acc = metrics.history[-1]['Accuracy']
    p_dev = next(learn.model.parameters()).device.type
    assert p_dev == dev and seen == {dev}, f'model on {p_dev}, batches on {seen}; expected {dev}'
    assert acc > 0.6, f'accuracy {acc:.3f} after one epoch: expected over 0.6'
    return dict(accuracy=acc, model_device=p_dev)


def check_fp16(dev, dry_run, tol=0.05):
    "MixedPrecision's CUDA defaults (fp16 + GradScaler) against float32: conv outputs in fp16, losses within `tol`"
    import torch, torch.nn.functional as F
    from torch import nn
    from miniai.accel import MixedPrecision
    from miniai.activations import set_seed
    from miniai.learner import Callback, DeviceCB, TrainCB
    from miniai.resnet import get_resnet
    n = 4 if dry_run else 20  # fp16 convolutions are slow on a CPU: the dry run takes a few small batches
    dls = _dls(dry_run, bs=64 if dry_run else 256)
    batches = [b for _, b in zip(range(n), dls.train)]
    class Rec(Callback):
        order = MixedPrecision.order + 1
        def before_fit(self, learn):
            self.losses, self.conv = [], set()
            self.h = [m.register_forward_hook(lambda m, i, o: self.conv.add(o.dtype)) for m in learn.model.modules() if isinstance(m, nn.Conv2d)]
        def after_loss(self, learn): self.loss_dtype = learn.loss.dtype
        def after_batch(self, learn): self.losses.append(learn.loss.item())
        def cleanup_fit(self, learn):
            for h in self.h: h.remove()
    def run(cb):
        set_seed(1)
        rec = Rec()
        learn = _learner(get_resnet(), (batches, []), [DeviceCB(dev), cb, rec], lr=1e-3)
        learn.fit(1, valid=False)
        return rec, learn
    fp32, _ = run(TrainCB())
    # on a GPU MixedPrecision's defaults are fp16 and a scaler; the dry run asks the CPU for the same branch
    mp = MixedPrecision() if dev == 'cuda' else MixedPrecision(dtype=torch.float16)
    half, learn = run(mp)
    rel = [abs(a - b)/abs(a) for a, b in zip(fp32.losses, half.losses)]
    assert half.conv == {torch.float16}, f'conv outputs in {half.conv}: expected float16'
    assert half.loss_dtype == torch.float32 and next(learn.model.parameters()).dtype == torch.float32
    assert mp.grad_scaler is not None and mp.grad_scaler.is_enabled(), 'no GradScaler in use with fp16'
    assert max(rel) < tol, f'fp16 losses differ from fp32 by up to {max(rel):.3f} (relative; tolerance {tol})'
    return dict(batches=n, max_rel_loss_diff=max(rel), fp32_last_loss=fp32.losses[-1], fp16_last_loss=half.losses[-1],
                scale=mp.grad_scaler.get_scale())


def check_accelerate(dev, dry_run):
    "AccelerateCB in one process on one GPU: accelerate's device is the GPU; the CNN learns; the Learner's objects come back"
    import torch
    from torch import nn
    from miniai.accel import AccelerateCB
    from miniai.activations import set_seed
    from miniai.cli import fashion_cnn
    from miniai.learner import Accuracy, MetricsCB
    set_seed(1)
    acb = AccelerateCB(cpu=dev == 'cpu')
    metrics = MetricsCB(Accuracy())
    metrics.log_fn = lambda row: None
    dls = _dls(dry_run)
    learn = _learner(fashion_cnn(), dls, [acb, metrics])
    learn.fit(1)
    acc = metrics.history[-1]['Accuracy']
    assert acb.acc.device.type == dev and acb.acc.num_processes == 1, f'accelerate chose {acb.acc.device}, {acb.acc.num_processes} process(es)'
    assert type(learn.model) is nn.Sequential and learn.dls is dls, 'the Learner did not get its own model and data back'
    assert acc > 0.6, f'accuracy {acc:.3f} after one epoch: expected over 0.6'
    return dict(accuracy=acc, accelerate_device=str(acb.acc.device))


LOAD_ON_CPU = '''
import json, sys, torch
from miniai.checkpoint import read_checkpoint
from miniai.resnet import get_resnet
assert not torch.cuda.is_available()
ck = read_checkpoint(sys.argv[1])
m = get_resnet(); m.load_state_dict(ck['model']); m.eval()
with torch.no_grad(): preds = m(torch.load(sys.argv[2]))
print(json.dumps(dict(epoch=ck['epoch'], preds=preds.tolist())))
'''

def check_checkpoint(dev, dry_run):
    "A checkpoint saved by CheckpointCB during a fit on the device loads in a process with no GPU, with the same predictions"
    import torch
    from miniai.activations import set_seed
    from miniai.checkpoint import CheckpointCB
    from miniai.learner import DeviceCB, MetricsCB, TrainCB
    from miniai.resnet import get_resnet
    dls = _dls(dry_run, bs=64 if dry_run else 256)
    batches = [b for _, b in zip(range(3 if dry_run else 10), dls.train)]
    set_seed(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        metrics = MetricsCB()
        metrics.log_fn = lambda row: None
        learn = _learner(get_resnet(), (batches, batches[:2]), [TrainCB(), DeviceCB(dev), metrics, CheckpointCB(tmp/'ck')])
        learn.fit(1)
        xb = batches[0][0][:16]
        torch.save(xb, tmp/'x.pt')
        learn.model.eval()
        with torch.no_grad(): want = learn.model(xb.to(dev)).cpu()
        env = {**os.environ, 'CUDA_VISIBLE_DEVICES': '', 'PYTHONPATH': str(ROOT)}
        r = subprocess.run([sys.executable, '-c', LOAD_ON_CPU, str(tmp/'ck'/'last.pt'), str(tmp/'x.pt')], env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f'loading on the CPU failed: {r.stderr[-2000:]}'
        got = torch.tensor(json.loads(r.stdout.strip().splitlines()[-1])['preds'])
    diff = (got - want).abs().max().item()
    assert diff < 1e-3, f'predictions of the CPU copy differ from the GPU model by {diff:.2e}'
    return dict(saved_on=dev, max_pred_diff=diff)


def time_resnet(a, dev):
    "Interleaved rounds of one ResNet epoch: raw eager loop, the Learner eager, the fast path (two configurations)"
    runners = 'raw,miniai,miniai-fast' + (',miniai-fast:channels_last+compile+fused+amp' if dev == 'cuda' else '')
    cmd = [sys.executable, str(HERE/'bench.py'), 'run', '--model', 'cnn' if a.dry_run else 'resnet', '--runners', runners,
           '--rounds', '1' if a.dry_run else str(a.rounds), '--tag', 'gpu-dry-run' if a.dry_run else 'gpu-resnet-1ep',
           '--out', str(a.out/('gpu-dry-run.jsonl' if a.dry_run else 'gpu-resnet-1ep.jsonl')), '--device', dev]
    if a.dry_run: cmd += ['--small', '--max-other', '1e9']  # a dry run checks the script, not its times: never repeated
    else: cmd += ['--threads', str(min(os.cpu_count() or 1, 8)), '--max-other', '1e9']  # GPU: other CPU work barely matters
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, 'PYTHONPATH': str(ROOT)})


if __name__ == '__main__': raise SystemExit(main())
