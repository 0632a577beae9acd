"""Does per-item augmentation pay? The lesson ResNet trained from the PNG files with and without it (lesson 15b).

    python bench/augment_files.py --epochs 20                      # none and item, one JSON line each -> bench/results/augment-files.jsonl
    python bench/augment_files.py --epochs 20 --runs shift         # the milder augmentation alone
    python bench/augment_files.py --epochs 2 --small               # a quick check that it runs
    python bench/augment_files.py --plot bench/results/augment-files.png   # the curves of every stored run

The runs use the same model (`get_resnet`, lesson 12), seed, batch size (256), epochs and schedule (`fit_one_cycle`:
AdamW, one-cycle to `--lr`), the same validation images and transforms (the files as they are); only the training
transforms differ:

- `none`: `make_grey`, `to_byte_tensor`, `to_float_tensor` (lesson 15);
- `item`: the same with a random left-right flip and a `RandomResizedCrop(28, scale=(0.6, 1))` before the conversion
  to a tensor (lesson 15b), drawn afresh at every read;
- `shift`: a milder one, the per-item twin of lesson 13's batch augmentation: a random left-right flip and a shift of
  up to one pixel each way (`PilRandomCrop(1)`).

Augmentation only pays once the plain run starts to overfit (its training loss keeps falling while the validation loss
rises), which for this model on Fashion-MNIST takes more than 5 epochs: use 20 or more. On 2 CPU cores one epoch from the
files takes about a minute, so a 20-epoch run takes about 20 minutes. Each run appends one line: per-epoch training and
validation loss and accuracy, seconds per epoch, and the settings.
"""
from __future__ import annotations
import argparse, json, random, sys, time
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE/'results'/'augment-files.jsonl'
RUNS = ('none', 'item', 'shift')  # the training transforms `dls_for` knows


def dls_for(aug, small, bs):
    "The file pipeline of lesson 15 with training transforms `aug` ('none', 'item' or 'shift') and plain validation transforms"
    from miniai.datablock import (CategoryProcessor, ImageList, SplitData, grandparent_splitter, label_by_func, make_grey,
                                  parent_labeler, to_byte_tensor, to_dls, to_float_tensor)
    from miniai.imagefiles import write_fmnist_pngs
    from miniai.warps import PilRandomCrop, PilRandomFlip, RandomResizedCrop
    plain = [make_grey, to_byte_tensor, to_float_tensor]
    extra = dict(none=[], item=[PilRandomFlip(), RandomResizedCrop(28, scale=(0.6, 1.))], shift=[PilRandomFlip(), PilRandomCrop(1)])
    train = plain + extra[aug]
    il = ImageList.from_files(write_fmnist_pngs(small=small), tfms=train)
    sd = SplitData.split_by_func(il, partial(grandparent_splitter, valid_name='val'), valid_tfms=plain)
    return to_dls(label_by_func(sd, parent_labeler, proc_y=CategoryProcessor()), bs=bs)


def run(aug, a):
    import torch
    from miniai.activations import set_seed
    from miniai.datablock import channel_stats, norm_tfm
    from miniai.init import BatchTransformCB
    from miniai.learner import Callback
    from miniai.resnet import fit_one_cycle, get_resnet
    torch.set_num_threads(a.threads)
    dls = dls_for(aug, a.small, a.bs)
    mean, std = channel_stats(dls.valid, n_batches=10)  # from the plain images, the same for both runs

    class EpochTimes(Callback):
        def before_fit(self, learn): self.times = []
        def before_epoch(self, learn):
            if learn.training: self.t0 = time.perf_counter()
        def after_epoch(self, learn):  # an epoch: its training and its validation pass
            if not learn.training: self.times.append(time.perf_counter() - self.t0)

    set_seed(a.seed)
    random.seed(a.seed)
    et = EpochTimes()
    t0 = time.perf_counter()
    learn = fit_one_cycle(get_resnet(), dls, epochs=a.epochs, lr=a.lr, cbs=[BatchTransformCB(norm_tfm(mean, std)), et])
    hist = learn.metrics.history
    rec = dict(aug=aug, epochs=a.epochs, lr=a.lr, bs=a.bs, seed=a.seed, small=a.small, total_s=round(time.perf_counter() - t0, 1),
               train=[{k: r[k] for k in ('loss', 'accuracy')} for r in hist if r['train'] == 'train'],
               valid=[{k: r[k] for k in ('loss', 'accuracy')} for r in hist if r['train'] == 'eval'],
               epoch_s=[round(t, 1) for t in et.times], date=time.strftime('%Y-%m-%d %H:%M'))
    print(json.dumps(rec), flush=True)
    if not a.small:
        with open(a.out, 'a') as f: f.write(json.dumps(rec) + '\n')
    return rec


def curves(recs, axs=None):
    "Draw the runs `recs` (records of `run`): training and validation loss, and validation accuracy, per epoch"
    import matplotlib.pyplot as plt
    if axs is None: _, axs = plt.subplots(1, 2, figsize=(10, 4))
    for i, r in enumerate(recs):
        lbl, ep = f"{r['aug']}, {r['epochs']} epochs", range(1, len(r['valid']) + 1)
        axs[0].plot(ep, [v['loss'] for v in r['valid']], color=f'C{i}', label=f'{lbl}, valid')
        axs[0].plot(ep, [v['loss'] for v in r['train']], '--', color=f'C{i}', label=f'{lbl}, train')
        axs[1].plot(ep, [v['accuracy'] for v in r['valid']], color=f'C{i}', label=lbl)
    axs[0].set(title='loss', xlabel='epoch'); axs[1].set(title='validation accuracy', xlabel='epoch')
    for ax in axs: ax.legend(fontsize=7)
    return axs


def plot(dest, src=OUT):
    import matplotlib
    matplotlib.use('agg')
    recs = [json.loads(l) for l in Path(src).read_text().splitlines() if l.strip()]
    curves(recs)[0].figure.savefig(dest, dpi=100, bbox_inches='tight')
    print(f'{len(recs)} runs drawn in {dest}')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--runs', default='none,item', help='comma-separated: none, item, shift (run in this order)')
    p.add_argument('--epochs', type=int, default=20)
    p.add_argument('--lr', type=float, default=1e-2)
    p.add_argument('--bs', type=int, default=256)
    p.add_argument('--seed', type=int, default=42)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--small', action='store_true', help='the 10%% subset (a check that it runs; not stored)')
    p.add_argument('--out', default=str(OUT), help='the JSON-lines file the runs are appended to (and --plot reads)')
    p.add_argument('--plot', metavar='PNG', help='draw the stored runs instead of training')
    a = p.parse_args(argv)
    if a.plot: return plot(a.plot, a.out)
    runs = a.runs.split(',')
    bad = [r for r in runs if r not in RUNS]
    if bad: sys.exit(f'augment_files.py: unknown run {bad[0]!r}; use one of {", ".join(RUNS)}')  # before hours of training
    for aug in runs: run(aug, a)


if __name__ == '__main__': main()
