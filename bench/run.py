"""One benchmark run in this process: `python bench/run.py RUNNER [options]` prints one JSON line.

Every runner trains the same model (same initial weights: built after `torch.manual_seed(seed)`), on the same data
in the same order (training order from `torch.randperm(n, generator=torch.Generator().manual_seed(seed))` each
epoch), with AdamW and torch's `OneCycleLR` stepped after every training batch, and times each epoch (training pass
plus validation pass). Runners:

- `raw`: a hand-written PyTorch loop over in-memory tensors: the compute-only reference;
- `miniai`: `TrainLearner` with `DeviceCB`, `MetricsCB(accuracy=Accuracy())`, `ProgressCB(plot=True)` and
  `BatchSchedCB`, fed by `fashion_dls` (in-memory `TensorLoader`s): what a user would write;
- `miniai-hf`: the same Learner fed by lesson 04's per-item path: the Hugging Face `DatasetDict`, a
  `with_transform` that turns each PIL image into a tensor, `DataLoaders.from_dd`;
- `files`: the same Learner fed by lesson 15's data block pipeline from Fashion-MNIST written as PNG files
  (`write_fmnist_pngs`): `ImageList.from_files` with `make_grey`, `to_byte_tensor`, `to_float_tensor`, split by folder,
  labelled by folder (with `miniai.data`'s class order as the vocabulary), `cache_items` (each PNG decoded once, through
  `make_grey` and `to_byte_tensor`, into a memory-mapped file in miniai's cache folder, built by the first run and
  loaded by the next; `cache_s` and `cache_status` in the JSON, outside the timed epochs), `to_dls` (`--workers`
  processes, default 0). The training files are put in their index order, so the batches are those of `miniai`;
- `files-nocache`: `files` without `cache_items`: every PNG decoded and transformed every epoch;
- `miniai-fast`: the `miniai` runner on the fast path of lesson 14 (`--fast`, default per model and machine from
  `fast_default`): `ChannelsLastCB`, `CompileCB`, `MixedPrecision` (bf16 autocast on a CPU) and AdamW with `fused=True`.
  With `CompileCB` the graphs are compiled first, on a copy of the model over one batch of each size the fit will see
  (`warmup_s` in the JSON), so the epoch times are those of compiled code;
- `fastai`, `lightning`: peers, run by `bench/peers.py` in their own virtual environments.

Every runner also records the floating-point work of one training step (`torch.utils.flop_counter.FlopCounterMode`,
forward and backward of one full batch: `train_gflop_per_img`) and, at the end, a 2048x2048 float32 matrix product's
speed in the same process (`matmul_gflops`), so that its achieved GFLOP/s can be set against what the cores can do.
"""
from __future__ import annotations
import argparse, json, os, platform, resource, sys, time
from functools import partial
from pathlib import Path

MAX_LR = dict(cnn=4e-3, resnet=1e-2, linear=1e-2, vgg=4e-3)
# The fastest configuration per model, from lesson 14's measurements: compiling pays on the ResNet (BatchNorm and
# activations fuse into few passes), not on the small CNN, where channels-last does more; for the speedrun's network
# (vgg) the speedrun's own choice, all three (compiling shortened its 4-epoch run by 14 s, cold compile included)
FAST = dict(cnn='channels_last,fused', resnet='compile,fused', linear='fused', vgg='channels_last,compile,fused')
# On a CPU with bf16 instructions, the ResNet's convolutions run faster in bf16 (oneDNN's AVX-512 BF16 kernels): there
# mixed precision with channels-last was fastest, and compiling on top of it gained nothing (2026-12-07, AMD EPYC VM).
# The small CNN's layers are too small for bf16 to pay (lesson 14: 1.1-1.15x slower), so its default stays float32.
FAST_BF16 = dict(FAST, resnet='channels_last,fused,amp')
FAST_OPTS = ('channels_last', 'compile', 'fused', 'amp')  # amp: MixedPrecision (bf16 autocast on a CPU, fp16 on CUDA)


def cpu_bf16():
    "The bf16 instructions of this CPU as /proc/cpuinfo lists them (AVX-512 BF16, AMX): a sorted list, empty where none"
    info = Path('/proc/cpuinfo')
    return sorted({'avx512_bf16', 'amx_bf16'} & set(info.read_text().split())) if info.exists() else []


def fast_default(model, device='cpu'):
    "The `miniai-fast` configuration for `model` on `device`: `FAST_BF16` on a CPU with bf16 instructions, else `FAST`"
    return (FAST_BF16 if device == 'cpu' and cpu_bf16() else FAST)[model]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('runner', choices=['raw', 'miniai', 'miniai-fast', 'miniai-hf', 'files', 'files-nocache', 'fastai', 'lightning'])
    p.add_argument('--model', choices=['cnn', 'resnet', 'linear', 'vgg'], default='cnn',
                   help="linear: one linear layer, almost no compute: the epoch time is the loop's own overhead; "
                        "vgg: the speedrun's network (bench/speedrun.py), widths from --widths")
    p.add_argument('--epochs', type=int, default=1)
    p.add_argument('--bs', type=int, default=256)
    p.add_argument('--lr', type=float, default=None, help='the one-cycle peak learning rate (default: per model)')
    p.add_argument('--seed', type=int, default=42)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--device', default='cpu', help="where to train: cpu, cuda, ... (raw puts the data there; the Learner moves each batch)")
    p.add_argument('--small', action='store_true', help='the 10%% subset of Fashion-MNIST (quick mode)')
    p.add_argument('--aug', action='store_true',
                   help="miniai and miniai-fast: lesson 13's `augment_cb()` on training batches, and test-time augmentation (flip) at the end")
    p.add_argument('--erase', type=float, default=0., help="with --aug: also lesson 13's random erasing, rectangles of this fraction of the height and width")
    p.add_argument('--nfs', default=None, help="resnet only: get_resnet's channels, comma-separated (default 8,16,32,64,128,256)")
    p.add_argument('--widths', default='24,48,96', help="vgg only: the channels of its three stages")
    p.add_argument('--smooth', type=float, default=0., help="label smoothing of the loss (miniai runners)")
    p.add_argument('--wd', type=float, default=0.01, help="AdamW's weight decay (0.01: torch's default)")
    p.add_argument('--workers', type=int, default=0, help="files runners only: `to_dls`'s num_workers (processes that read the images)")
    p.add_argument('--fast', default=None, help=f"miniai-fast only: comma-separated, from {','.join(FAST_OPTS)} (default per model: {FAST}; on a CPU with bf16 instructions {FAST_BF16})")
    p.add_argument('--json', type=Path, default=None, help='also write the JSON line to this file')
    p.add_argument('--progress', choices=['plot', 'bar', 'none'], default='plot',
                   help="miniai's ProgressCB: with its loss plot (default, as a user would), without it, or no ProgressCB")
    p.add_argument('--plot-dir', type=Path, default=None, help="where ProgressCB saves its loss plot (default: a temp dir)")
    a = p.parse_args(argv)
    if a.lr is None: a.lr = MAX_LR[a.model]
    if a.aug and a.runner not in ('miniai', 'miniai-fast'): p.error('--aug: only with the miniai and miniai-fast runners')
    if a.smooth and not a.runner.startswith('miniai'): p.error('--smooth: only with the miniai runners')
    if a.erase and not a.aug: p.error('--erase: only with --aug')
    if a.nfs and a.model != 'resnet': p.error('--nfs: only with --model resnet')
    if a.widths != p.get_default('widths') and a.model != 'vgg': p.error('--widths: only with --model vgg')
    if a.workers and not a.runner.startswith('files'): p.error('--workers: only with the files runners')
    if a.workers < 0: p.error(f'--workers must be 0 or more, got {a.workers}')
    if a.fast and a.runner != 'miniai-fast': p.error('--fast: only with the miniai-fast runner')
    a.fast = (a.fast or fast_default(a.model, a.device)).split(',') if a.runner == 'miniai-fast' else []
    bad = [o for o in a.fast if o not in FAST_OPTS]
    if bad: p.error(f'--fast {",".join(a.fast)}: unknown {bad[0]!r}; choose from {",".join(FAST_OPTS)}')
    return a


def proc_busy_s():
    "CPU seconds spent by everything on the machine since boot (all cores; idle and iowait excluded), from /proc/stat"
    try:
        with open('/proc/stat') as f: vals = [int(v) for v in f.readline().split()[1:]]
    except OSError: return float('nan')
    user, nice, system, idle, iowait, irq, softirq, steal = (vals + [0]*8)[:8]
    return (user + nice + system + irq + softirq) / os.sysconf('SC_CLK_TCK')


def own_cpu_s():
    "CPU seconds used by this process and its children (live ones, such as DataLoader workers, read from /proc)"
    tick, me, kids = os.sysconf('SC_CLK_TCK'), os.getpid(), 0.
    try: pids = [d for d in os.listdir('/proc') if d.isdigit()]
    except OSError: pids = []
    for pid in pids:
        try:
            with open(f'/proc/{pid}/stat') as f: fields = f.read().rsplit(')', 1)[1].split()
        except OSError: continue
        if int(fields[1]) == me: kids += (int(fields[11]) + int(fields[12])) / tick  # ppid, utime, stime
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids + done.ru_utime + done.ru_stime


class Window:
    "Wall time, this process's CPU time (with its children's) and the rest of the machine's CPU time between `start` and `stop`"
    def start(self):
        self.t, self.cpu, self.busy = time.perf_counter(), own_cpu_s(), proc_busy_s()
        self.flt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        return self
    def stop(self):
        wall, cpu = time.perf_counter() - self.t, own_cpu_s() - self.cpu
        return dict(wall_s=wall, cpu_s=cpu, other_cpu_s=max(proc_busy_s() - self.busy - cpu, 0.),
                    page_faults=resource.getrusage(resource.RUSAGE_SELF).ru_minflt - self.flt)


def get_model(name, nfs=None, widths='24,48,96'):
    "The benchmarked model: the small lesson CNN (lesson 10's `get_model`), the lesson ResNet (lesson 12) with `nfs` channels if given, or the speedrun's network"
    import torch
    from torch import nn
    if name == 'linear': return nn.Sequential(nn.Flatten(), nn.Linear(28*28, 10))
    if name == 'vgg':
        from speedrun import model as vgg  # this folder is on sys.path when bench/run.py runs
        return vgg([int(w) for w in widths.split(',')], torch, nn)
    if name == 'cnn':
        from miniai.init import get_model as cnn
        return cnn()
    from miniai.resnet import get_resnet
    return get_resnet(nfs=tuple(int(o) for o in nfs.split(','))) if nfs else get_resnet()


def load_tensors(small):
    "Fashion-MNIST as float32 images (n,1,28,28) in [0,1] and int64 labels: what `fashion_dls` holds"
    from miniai.data import load_fmnist
    fm = load_fmnist(small=small)
    prep = lambda x: x.float().div_(255)[:, None]
    return prep(fm.x_train), fm.y_train, prep(fm.x_test), fm.y_test


def _sync():
    "Wait for the GPU's queued work, so that the clock measures it (nothing to wait for on a CPU)"
    import torch
    if torch.cuda.is_available() and torch.cuda.is_initialized(): torch.cuda.synchronize()


def run_raw(a, model, g, res):
    "The reference: a plain loop over in-memory tensors, the same steps in the same order as the Learner's"
    import torch, torch.nn.functional as F
    from torch import optim
    model.to(a.device)
    xt, yt, xv, yv = [t.to(a.device) for t in load_tensors(a.small)]
    n, bs = len(xt), a.bs
    nb = (n + bs - 1) // bs
    opt = optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.wd)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.epochs*nb)
    res['n_train'], res['n_valid'] = n, len(xv)
    for epoch in range(a.epochs):
        w, t0 = Window().start(), time.perf_counter()
        model.train()
        idxs = torch.randperm(n, generator=g).to(a.device)
        for i in range(nb):
            b = idxs[i*bs:(i+1)*bs]
            xb, yb = xt[b], yt[b]
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad()
            sched.step()
        _sync()
        t1 = time.perf_counter()
        model.eval()
        tot_loss, correct = 0., 0
        with torch.no_grad():
            for i in range(0, len(xv), bs):
                xb, yb = xv[i:i+bs], yv[i:i+bs]
                preds = model(xb)
                tot_loss += F.cross_entropy(preds, yb) * len(yb)
                correct += (preds.argmax(1) == yb).sum()
        res['epochs'].append(dict(train_s=t1 - t0, valid_loss=float(tot_loss)/len(xv),
                                  accuracy=float(correct)/len(xv), **w.stop()))


def _timer_cbs(res):
    "Two callbacks that bracket each epoch: the first runs before every other callback, the last after all of them"
    from miniai.learner import Callback
    class EpochStart(Callback):
        order = -10**6
        def before_epoch(self, learn):
            if learn.training: self.w, self.t0 = Window().start(), time.perf_counter()
        def after_epoch(self, learn):
            if learn.training: _sync(); self.t1 = time.perf_counter()
    start = EpochStart()
    class EpochEnd(Callback):
        order = 10**6
        def after_epoch(self, learn):
            if not learn.training:
                h, t = learn.metrics.history[-1], learn.metrics.history[-2]  # this epoch's validation and training rows
                res['epochs'].append(dict(train_s=start.t1 - start.t0, valid_loss=h['loss'], accuracy=h['accuracy'],
                                          train_loss=t['loss'], train_accuracy=t['accuracy'], **start.w.stop()))
    return [start, EpochEnd()]


def hf_dls(a, g):
    "Lesson 04's per-item path: each PIL image becomes a tensor in a `with_transform`, then `DataLoaders.from_dd`"
    from miniai.datasets import DataLoaders, fashion_mnist_dd, image_to_tensor, inplace
    dd = fashion_mnist_dd(small=a.small)
    @inplace
    def transformi(b): b['image'] = [image_to_tensor(o) for o in b['image']]
    dls = DataLoaders.from_dd(dd.with_transform(transformi), a.bs)
    dls.train.sampler.generator = g  # the RandomSampler draws torch.randperm(n, generator=g): the same order as `raw`
    return dls


def files_dls(a, g, cache=True, res=None):
    """Lesson 15's path: PNG files on disk, per-item transforms, `to_dls`; training items in index order (the order of `raw`);
    with `cache`, decoded once by `cache_items` (its seconds and whether it was built or loaded go into `res`)"""
    from miniai.datablock import (ImageList, SplitData, grandparent_splitter, label_by_func, parent_labeler, CategoryProcessor,
                                  cache_items, make_grey, to_byte_tensor, to_float_tensor, to_dls)
    from miniai.imagefiles import class_folder, write_fmnist_pngs
    from miniai.data import FMNIST_CLASSES
    il = ImageList.from_files(write_fmnist_pngs(small=a.small), tfms=[make_grey, to_byte_tensor, to_float_tensor])
    il.items.sort(key=lambda f: (f.parent.parent.name, int(f.stem)))  # file n.png is image n of its split
    sd = SplitData.split_by_func(il, partial(grandparent_splitter, valid_name='val'))
    vocab = [class_folder(c) for c in FMNIST_CLASSES]  # miniai.data's class order, so the labels are the same ints as in memory
    ll = label_by_func(sd, parent_labeler, proc_y=CategoryProcessor(vocab))
    if cache:
        t = time.perf_counter()
        cache_items(ll)
        if res is not None: res.update(cache_s=time.perf_counter() - t, cache_status=[ll.train.x.cache.status, ll.valid.x.cache.status])
    dls = to_dls(ll, a.bs, num_workers=a.workers)
    dls.train.sampler.generator = g  # the RandomSampler draws torch.randperm(n, generator=g): the same order as `raw`
    return dls


def run_miniai(a, model, g, res):
    "What a user writes: `TrainLearner` with the usual callbacks, on the in-memory or the per-item data path"
    import tempfile
    import torch.nn.functional as F
    from torch import optim
    from miniai.learner import Accuracy, DeviceCB, MetricsCB, ProgressCB, TrainLearner
    from miniai.sgd import BatchSchedCB
    if a.runner in ('miniai', 'miniai-fast'):
        from miniai.datasets import fashion_dls
        dls = fashion_dls(a.bs, small=a.small)
        dls.train.generator = g
    elif a.runner.startswith('files'): dls = files_dls(a, g, cache=a.runner == 'files', res=res)
    else: dls = hf_dls(a, g)
    res['n_train'], res['n_valid'] = len(dls.train.dataset), len(dls.valid.dataset)
    sched = partial(optim.lr_scheduler.OneCycleLR, max_lr=a.lr, total_steps=a.epochs*len(dls.train))
    plot_dir = a.plot_dir or Path(tempfile.mkdtemp(prefix='miniai-bench-'))
    cbs = [DeviceCB(a.device), MetricsCB(accuracy=Accuracy()), BatchSchedCB(sched)]
    if a.progress != 'none': cbs.append(ProgressCB(plot=a.progress == 'plot', fname=plot_dir/'loss.png'))
    if a.aug:
        from miniai.augment import augment_cb
        cbs.append(augment_cb(erase=a.erase))
    opt_func = partial(optim.AdamW, weight_decay=a.wd, fused='fused' in a.fast or None)
    loss_func = partial(F.cross_entropy, label_smoothing=a.smooth) if a.smooth else F.cross_entropy
    learner = TrainLearner
    if a.fast:
        from miniai.accel import ChannelsLastCB, CompileCB, MixedPrecision
        from miniai.learner import Learner
        if 'amp' in a.fast: learner = Learner  # MixedPrecision supplies the steps of a batch (TrainLearner has its own)
        fast_cbs = lambda: [cb() for o, cb in (('channels_last', ChannelsLastCB), ('compile', CompileCB), ('amp', MixedPrecision))
                            if o in a.fast]
        cbs += fast_cbs()
        if 'compile' in a.fast: res['warmup_s'] = warm_up(model, dls, [DeviceCB(a.device), *fast_cbs()], opt_func, learner, a)
    learn = learner(model, dls, loss_func, lr=a.lr, cbs=cbs, opt_func=opt_func)
    learn.fit(a.epochs, cbs=_timer_cbs(res))
    if a.aug: res['tta'] = tta(learn)


def warm_up(model, dls, cbs, opt_func, learner, a):
    "Seconds to compile what `fit` will run: one fit of a copy of `model` over one batch of each size of the training and validation data"
    import copy, torch.nn.functional as F
    def sizes(dl):
        x, y = dl.dataset.tensors[:2]
        last = len(x) % dl.batch_size or dl.batch_size
        return [(x[:dl.batch_size], y[:dl.batch_size]), (x[:last], y[:last])]
    t = time.perf_counter()
    learner(copy.deepcopy(model), (sizes(dls.train), sizes(dls.valid)), F.cross_entropy, lr=a.lr, cbs=cbs,
            opt_func=opt_func).fit(1)
    _sync()
    return time.perf_counter() - t


def flops(a, model):
    "GFLOP per image of one training step (forward and backward, one full batch) of a fresh copy of `model`, counted by torch"
    import copy, torch, torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode
    m = copy.deepcopy(model).train().to(a.device)
    x, y = torch.rand(a.bs, 1, 28, 28, device=a.device), torch.randint(0, 10, (a.bs,), device=a.device)
    if a.model == 'linear': x = x.flatten(1)
    with FlopCounterMode(display=False) as fc: F.cross_entropy(m(x), y).backward()
    return fc.get_total_flops()/a.bs/1e9


def matmul_gflops(n=2048, reps=10, device='cpu'):
    "GFLOP/s of an n x n float32 matrix product on `device` (this process's threads on a CPU), median of `reps`, after one warm-up"
    import statistics, torch
    x, y = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    x @ y
    ts = []
    for _ in range(reps):
        _sync(); t = time.perf_counter(); x @ y; _sync(); ts.append(time.perf_counter() - t)
    return 2*n**3/statistics.median(ts)/1e9


def tta(learn):
    "Test-time augmentation: average the predicted probabilities for the validation images and their mirror images"
    from miniai.augment import AugmentCB, capture_preds, rand_flip
    preds, targs = capture_preds(learn)
    preds_f, _ = capture_preds(learn, cbs=AugmentCB(partial(rand_flip, p=1.), on_train=False, on_val=True))
    acc = lambda p: (p.argmax(1) == targs).float().mean().item()
    return dict(accuracy=acc(preds), flipped_accuracy=acc(preds_f), tta_accuracy=acc(preds.softmax(1) + preds_f.softmax(1)))


def _git_commit():
    "The checkout's commit, with '+dirty' when miniai/ has uncommitted changes: which Learner was measured"
    import subprocess
    root = Path(__file__).resolve().parent.parent
    git = lambda *a: subprocess.run(['git', *a], cwd=root, capture_output=True, text=True).stdout.strip()
    try: return git('rev-parse', '--short', 'HEAD') + ('+dirty' if git('status', '--porcelain', 'miniai') else '')
    except OSError: return None


def new_result(a, model):
    "A run's JSON record before its epochs: what was run, on which model (also used by bench/peers.py)"
    import torch
    runner = (a.runner if a.progress == 'plot' else f'{a.runner}-{a.progress}') + (f'-w{a.workers}' if getattr(a, 'workers', 0) else '')
    fast = getattr(a, 'fast', [])
    if fast and fast != fast_default(a.model, str(getattr(a, 'device', 'cpu'))).split(','): runner += '-' + '+'.join(fast)  # a configuration other than the default
    return dict(runner=runner, model=a.model, epochs=[], bs=a.bs,
                lr=a.lr, seed=a.seed, threads=a.threads, small=a.small, aug=a.aug, erase=a.erase, nfs=a.nfs,
                widths=a.widths if a.model == 'vgg' else None, smooth=getattr(a, 'smooth', 0.), wd=getattr(a, 'wd', 0.01),
                workers=getattr(a, 'workers', 0), fast=getattr(a, 'fast', []), device=str(getattr(a, 'device', 'cpu')),
                n_params=sum(p.numel() for p in model.parameters()), torch=torch.__version__, cpu_bf16=cpu_bf16())


def finish_result(a, res, fit, t_start):
    "Complete the record from its timed epochs (`fit`: the `Window` around the whole fit), then write and print it"
    eps = res['epochs']
    for e in eps: e['train_img_s'] = res['n_train']/e['train_s']
    res.update(epoch_s=[e['wall_s'] for e in eps], train_img_s=[e['train_img_s'] for e in eps],
               valid_loss=eps[-1]['valid_loss'], accuracy=eps[-1]['accuracy'],
               fit_s=fit['wall_s'], other_cpu_s=sum(e['other_cpu_s'] for e in eps),
               total_s=time.perf_counter() - t_start)
    if getattr(a, 'fast', None) is not None:  # bench/run.py's runners (the peers have no --fast)
        res['train_gflop_per_img'] = flops(a, a.model_copy)
        res['train_gflops'] = [res['train_gflop_per_img']*r for r in res['train_img_s']]
        res['matmul_gflops'] = matmul_gflops(device=a.device)
    res['git'] = _git_commit()
    line = json.dumps(res)
    if a.json: a.json.write_text(line + '\n')
    print(line, flush=True)


def main(argv=None):
    a = parse_args(argv)
    t_start = time.perf_counter()
    import torch
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = get_model(a.model, a.nfs, a.widths)
    import copy
    a.model_copy = copy.deepcopy(model)  # for counting FLOPs at the end, away from the timed epochs
    g = torch.Generator().manual_seed(a.seed)
    res = new_result(a, model)
    w = Window().start()
    if a.runner == 'raw': run_raw(a, model, g, res)
    elif a.runner.startswith('miniai') or a.runner.startswith('files'): run_miniai(a, model, g, res)
    else: raise SystemExit(f'{a.runner}: run the peers with bench/peers.py')
    finish_result(a, res, w.stop(), t_start)


if __name__ == '__main__': main()
