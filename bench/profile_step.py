"""Where the ResNet's training step spends its time, eager and compiled, and what some changes to the step cost.

    python bench/profile_step.py                       # every probe, then the profile of the compiled step
    python bench/profile_step.py --probes eager,compile --steps 30
    python bench/profile_step.py --probes eager,bf16,channels_last+bf16,compile,compile+bf16 --profile-probe channels_last+bf16

A probe is one way of running the training step of the lesson ResNet (lesson 12's `get_resnet`, batches of 256
Fashion-MNIST-sized images, cross-entropy, AdamW; `bf16`: the forward pass under bf16 autocast, lesson 14's mixed
precision): its median milliseconds per step over `--steps` steps after
warm-up steps (compiling included in the warm-up, reported apart). The probes run one after another in this one
process, which is fair enough for a first look at differences of 10% or more; the benchmark (`bench.py run`) decides.
The profile (torch.profiler, self CPU time of each operator) groups one probe's step time (`--profile-probe`, by
default the compiled step) by kind of work:
convolutions (oneDNN, which Inductor calls rather than generates), Inductor's fused kernels (the compiled graphs' own
time: BatchNorm, activations, additions and their backward), BatchNorm and activations of an eager step, the optimizer,
the loss, and the rest. Run it on a quiet machine (under the CPU lock when others share it).
"""
import argparse, json, statistics, sys, time
from collections import defaultdict
from pathlib import Path
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROBES = ('eager', 'compile', 'compile+channels_last', 'compile+opt', 'compile bs512',
          'bf16', 'channels_last+bf16', 'compile+bf16', 'compile+channels_last+bf16')


def make_step(probe, torch, nn, F, bs):
    "A function running one training step of a fresh ResNet in the way `probe` names"
    from miniai.resnet import get_resnet
    torch.manual_seed(0)
    model = get_resnet()
    x, y = torch.randn(bs, 1, 28, 28), torch.randint(0, 10, (bs,))
    if 'channels_last' in probe: model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=0.01, fused=True)
    fwd = torch.compile(model, dynamic=False) if 'compile' in probe else model
    opt_step = torch.compile(opt.step) if '+opt' in probe else opt.step
    def step():
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled='bf16' in probe): out = fwd(x)  # bf16: mixed precision (lesson 14)
        loss = F.cross_entropy(out.float(), y)
        loss.backward()
        opt_step()
        opt.zero_grad()
    return step


def time_probe(probe, steps, warm, torch, nn, F):
    bs = 512 if 'bs512' in probe else 256
    step = make_step(probe, torch, nn, F, bs)
    t = time.perf_counter()
    for _ in range(warm): step()
    warm_s = time.perf_counter() - t
    ts = []
    for _ in range(steps):
        t = time.perf_counter(); step(); ts.append(time.perf_counter() - t)
    ms = statistics.median(ts) * 1000
    return dict(probe=probe, bs=bs, ms_per_step=ms, us_per_image=ms * 1000 / bs, warmup_s=warm_s)


def kind(name):
    n = name.lower()
    if 'convolution' in n or 'mkldnn' in n or 'conv' in n: return 'convolutions (oneDNN)'
    if 'cpp_fused' in n or 'compiledfxgraph' in n: return "Inductor's fused kernels"  # a compiled graph's own time: its fused kernels
    if 'adam' in n or 'optimizer' in n or 'foreach' in n: return 'optimizer'
    if 'cross_entropy' in n or 'nll' in n or 'log_softmax' in n: return 'loss'
    if n.startswith('aten::mm') or n.startswith('aten::addmm'): return 'matrix products (linear layer)'
    if 'batch_norm' in n: return 'BatchNorm (eager)'  # in a compiled step BatchNorm is inside the fused kernels
    if 'relu' in n: return 'activations (eager)'
    return 'other'


def profile(torch, nn, F, steps=10, probe='compile'):
    "Self CPU time of the operations of `probe`'s step over `steps` steps, by kind and the top ten"
    step = make_step(probe, torch, nn, F, 256)
    for _ in range(3): step()
    from torch.profiler import ProfilerActivity, profile as tprofile
    with tprofile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps): step()
    evs = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in evs)
    by_kind = defaultdict(float)
    for e in evs: by_kind[kind(e.key)] += e.self_cpu_time_total
    top = sorted(evs, key=lambda e: -e.self_cpu_time_total)[:10]
    return dict(ms_per_step=total / steps / 1000,
                by_kind={k: v / total for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])},
                top=[(e.key[:70], e.self_cpu_time_total / total, e.count // steps) for e in top])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--probes', default=','.join(PROBES), help=f'comma-separated, of {PROBES}')
    ap.add_argument('--steps', type=int, default=20, help='timed steps per probe')
    ap.add_argument('--warm', type=int, default=3, help='untimed steps first (compiling happens there)')
    ap.add_argument('--no-profile', action='store_true')
    ap.add_argument('--profile-probe', default='compile', help='the probe whose step is profiled (default: compile)')
    ap.add_argument('--json', type=Path, help='also write the results here')
    a = ap.parse_args(argv)
    import torch, torch.nn as nn, torch.nn.functional as F
    torch.set_num_threads(torch.get_num_threads())
    res = dict(torch=torch.__version__, threads=torch.get_num_threads(), probes=[])
    for p in a.probes.split(','):
        r = time_probe(p, a.steps, a.warm, torch, nn, F)
        res['probes'].append(r)
        print(f"{p:24} batch {r['bs']:3}: {r['ms_per_step']:7.1f} ms a step, {r['us_per_image']:6.0f} us an image "
              f"(warm-up {r['warmup_s']:.0f} s)", flush=True)
    if not a.no_profile:
        res['profile'] = pr = profile(torch, nn, F, probe=a.profile_probe)
        pr['probe'] = a.profile_probe
        print(f"\n{a.profile_probe} step, profiled: {pr['ms_per_step']:.0f} ms of operations a step")
        for k, v in pr['by_kind'].items(): print(f'  {k:34} {v:6.1%}')
        print('  the ten largest (share, calls a step):')
        for name, share, n in pr['top']: print(f'    {share:6.1%} {n:4}x  {name}')
    if a.json: a.json.write_text(json.dumps(res, indent=1))


if __name__ == '__main__': main()
