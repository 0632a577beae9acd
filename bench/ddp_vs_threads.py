"""Two processes with one thread each (data-parallel, `AccelerateCB`) against one process with two threads.

    python bench/ddp_vs_threads.py --model cnn --rounds 3      # appends to bench/results/ddp-vs-threads.json, prints a table

Both sides run the same script: the Learner with `AccelerateCB(cpu=True)` and `MetricsCB`, one epoch on full
Fashion-MNIST, AdamW, the same global batch of 256 images (two processes take 128 each, so a step sees as many images
either way). `ddp` is launched by `miniai.accel.launch_local` (torchrun, gloo; torchrun gives each process one thread);
`threads` is the script run by itself with `torch.set_num_threads(2)`. Each round runs both, the order alternating.
The figure is training images per second over the training pass (all processes together), and the validation
accuracy shows that both trained alike.
"""
from __future__ import annotations
import argparse, json, os, statistics, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE/'results'/'ddp-vs-threads.json'


def train(model_name, out):
    "One training run in this process (or in each of torchrun's processes); rank 0 writes its figures to `out`"
    import torch, torch.nn.functional as F
    sys.path.insert(0, str(HERE))
    from run import get_model
    from miniai.accel import AccelerateCB
    from miniai.datasets import fashion_dls
    from miniai.learner import Accuracy, Callback, Learner, MetricsCB
    world = int(os.environ.get('WORLD_SIZE', 1))
    if world == 1: torch.set_num_threads(2)
    torch.manual_seed(42)
    model = get_model(model_name)
    dls = fashion_dls(bs=256//world, small=False)
    class Timer(Callback):
        order = 10**6
        def before_epoch(self, learn):
            if learn.training: self.t = time.perf_counter()
        def after_epoch(self, learn):
            if learn.training: self.train_s = time.perf_counter() - self.t
    acb, metrics, timer = AccelerateCB(cpu=True), MetricsCB(Accuracy()), Timer()
    metrics.log_fn = lambda row: None
    lr = dict(cnn=4e-3, resnet=1e-2)[model_name]
    Learner(model, dls, F.cross_entropy, lr=lr, opt_func=torch.optim.AdamW, cbs=[acb, metrics, timer]).fit(1)
    if acb.acc.process_index == 0:
        n = len(dls.train.dataset)
        Path(out).write_text(json.dumps(dict(world=world, threads_per_process=torch.get_num_threads(), train_s=timer.train_s,
                                             img_s=n/timer.train_s, accuracy=metrics.history[-1]['Accuracy'])))


def run(mode, model_name):
    "One run of `mode` ('ddp' or 'threads') in fresh processes; its figures"
    from miniai.accel import launch_local
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)/'res.json'
        env = {'PYTHONPATH': str(ROOT), 'GLIBC_TUNABLES': 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=68719476736'}
        args = ['worker', '--model', model_name, '--out', str(out)]
        if mode == 'ddp': r = launch_local(Path(__file__), nproc=2, args=args, timeout=1800, env=env)
        else:
            import subprocess
            r = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=1800, env={**os.environ, **env})
        if r.returncode: raise SystemExit(f'{mode} run failed:\n{r.stderr[-3000:]}')
        return json.loads(out.read_text())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('mode', nargs='?', default='bench', choices=['bench', 'worker'])
    p.add_argument('--model', choices=['cnn', 'resnet'], default='cnn')
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--out', default=None)
    a = p.parse_args(argv)
    if a.mode == 'worker': return train(a.model, a.out)
    stamp = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    rows = json.loads(OUT.read_text()) if OUT.exists() else []
    for r in range(a.rounds):
        for mode in (('threads', 'ddp') if r % 2 == 0 else ('ddp', 'threads')):
            res = dict(run(mode, a.model), mode=mode, model=a.model, round=r, session=stamp)
            print(json.dumps(res), flush=True)
            rows.append(res)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(rows, indent=1))
    print(table(rows))


def table(rows):
    "Median training images/s per model and mode, over all recorded rounds"
    lines = ['| model | one process, 2 threads (img/s) | two processes, 1 thread each (img/s) | ratio ddp/threads (median of rounds) | rounds | accuracy threads / ddp |',
             '|---|---|---|---|---|---|']
    for m in dict.fromkeys(r['model'] for r in rows):
        th = [r for r in rows if r['model'] == m and r['mode'] == 'threads']
        dd = [r for r in rows if r['model'] == m and r['mode'] == 'ddp']
        pairs = [(t, d) for t in th for d in dd if (t['session'], t['round']) == (d['session'], d['round'])]
        med = lambda rs, k: statistics.median(r[k] for r in rs)
        lines.append(f"| {m} | {med(th, 'img_s'):.0f} | {med(dd, 'img_s'):.0f} | {statistics.median(d['img_s']/t['img_s'] for t, d in pairs):.2f} | "
                     f"{len(pairs)} | {med(th, 'accuracy'):.3f} / {med(dd, 'accuracy'):.3f} |")
    return '\n'.join(lines)


if __name__ == '__main__': main()
