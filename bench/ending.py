"""Lesson 13's ending: a wider ResNet trained longer with batch augmentation, test-time augmentation, and an ensemble.

    python bench/ending.py                            # two models (seeds 1 and 2), 20 epochs each
    python bench/ending.py --small --epochs 1         # a check that the script runs, on the 10% subset

Each model is lesson 12's `get_resnet` with the channels `--nfs`, trained by lesson 12's `fit_one_cycle` (AdamW under a
one-cycle schedule peaking at `--lr`) on the whole training set, normalised as in lesson 13, with lesson 13's
`augment_cb()` (shifts of up to one pixel and flips; `--erase` adds random erasing) on the training batches and lesson 13's
label smoothing (`--smooth`, 0.1 by default; 0 for plain cross-entropy); each model
from its own seed. After training, for each model: the validation accuracy of its plain predictions, of its predictions
for the mirror images, and with test-time augmentation (TTA: the average of the two probability distributions). Then the
ensemble: the average of all the models' TTA probabilities. One JSON record per run of the script is appended to
bench/results/ending.jsonl (`--small` runs go to ending-small.jsonl), for lesson 13 to print. Each model's TTA
probabilities for the validation set are saved too (bench/results/ending-probs/e<epochs>-s<seed>.pt, a 10,000 x 10
float32 tensor; ending-probs-small/ for `--small`), so that a later run can put a model trained earlier into its ensemble:

    python bench/ending.py --epochs 30 --seeds 2 --with bench/results/ending-probs/e30-s1.pt

On this project's 2-core CPUs the lesson ResNet with `--nfs 8,16,32,64,256,512` takes 60-85 s per epoch with augmentation
(bench/results/resnet-20ep-nfs512-aug.jsonl: 20 epochs in 1187 s on an Intel Xeon VM; results/ending.jsonl: 27-29 minutes
a model on an AMD EPYC VM), so the default run takes 40-60 minutes in all; hold the CPU lock for all of it.
In 20 epochs no single model reached 0.945 with TTA (0.9434, 0.9439, 0.9435); their ensemble did (0.9464). In 30 epochs
one model did: seed 1, 0.9461 plain and 0.9470 with TTA, in 38.7 minutes on the AMD EPYC VM (`--epochs 30 --seeds 1`;
a second such model, `--epochs 30 --seeds 2 --with bench/results/ending-probs/e30-s1.pt`, would make a 30-epoch ensemble).
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, time
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--epochs', type=int, default=20, help='epochs per model (default 20)')
    p.add_argument('--nfs', default='8,16,32,64,256,512', help="get_resnet's channels, comma-separated")
    p.add_argument('--lr', type=float, default=1e-2, help='the one-cycle peak learning rate (lesson 12: 1e-2)')
    p.add_argument('--bs', type=int, default=256)
    p.add_argument('--seeds', default='1,2', help='one model per seed, comma-separated; two or more make an ensemble')
    p.add_argument('--erase', type=float, default=0., help="augment_cb's random erasing (0: none)")
    p.add_argument('--smooth', type=float, default=0.1, help="lesson 13's label smoothing epsilon (0: plain cross-entropy)")
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--small', action='store_true', help='the 10%% subset of Fashion-MNIST: a quick check, not a result')
    p.add_argument('--out', type=Path, default=None, help='the JSON-lines file to append to (default: bench/results/ending[-small].jsonl)')
    p.add_argument('--with', dest='with_', default='', help="TTA probabilities saved by earlier runs (comma-separated .pt files) to add to the ensemble")
    p.add_argument('--probs-dir', type=Path, default=None, help="where each model's TTA probabilities are saved (default: bench/results/ending-probs[-small])")
    a = p.parse_args(argv)
    try: a.seeds = [int(s) for s in a.seeds.split(',')]
    except ValueError: p.error(f'--seeds {a.seeds!r}: give whole numbers separated by commas, e.g. 1,2')
    try: a.nfs = tuple(int(n) for n in a.nfs.split(','))
    except ValueError: p.error(f'--nfs {a.nfs!r}: give channel counts separated by commas, e.g. 8,16,32,64,256,512')
    if a.epochs < 1: p.error(f'--epochs must be 1 or more, got {a.epochs}')
    if a.out is None: a.out = HERE/'results'/('ending-small.jsonl' if a.small else 'ending.jsonl')
    if a.probs_dir is None: a.probs_dir = HERE/'results'/('ending-probs-small' if a.small else 'ending-probs')
    a.with_ = [Path(f) for f in a.with_.split(',') if f]
    missing = [str(f) for f in a.with_ if not f.is_file()]
    if missing: p.error(f'--with: no such file {missing[0]}; give .pt files that an earlier run saved in {a.probs_dir}')
    return a


def train_one(a, dls, seed):
    "Train one model from `seed`; its accuracies (plain, flipped, TTA), its TTA probabilities and the targets"
    import torch
    import torch.nn.functional as F
    from miniai.activations import set_seed
    from miniai.augment import AugmentCB, LabelSmoothingCrossEntropy, augment_cb, capture_preds, rand_flip
    from miniai.resnet import fit_one_cycle, get_resnet
    set_seed(seed)
    t = time.perf_counter()
    learn = fit_one_cycle(get_resnet(nfs=a.nfs), dls, epochs=a.epochs, lr=a.lr, cbs=[augment_cb(erase=a.erase)],
                          loss_func=LabelSmoothingCrossEntropy(a.smooth) if a.smooth else F.cross_entropy)
    fit_s = time.perf_counter() - t
    preds, targs = capture_preds(learn)
    preds_f, _ = capture_preds(learn, cbs=AugmentCB(partial(rand_flip, p=1.), on_train=False, on_val=True))
    probs = (preds.softmax(1) + preds_f.softmax(1)) / 2
    acc = lambda p: (p.argmax(1) == targs).float().mean().item()
    rec = dict(seed=seed, fit_s=round(fit_s, 1), accuracy=acc(preds), flipped_accuracy=acc(preds_f), tta_accuracy=acc(probs))
    print(json.dumps(rec), flush=True)
    return rec, probs, targs


def main(argv=None):
    a = parse_args(argv)
    t0 = time.perf_counter()
    import torch
    from miniai.datasets import fashion_dls
    torch.set_num_threads(a.threads)
    dls = fashion_dls(a.bs, small=a.small)
    xt, xv = dls.train.dataset.tensors[0], dls.valid.dataset.tensors[0]
    mean, std = xt.mean(), xt.std()
    for x in (xt, xv): x.sub_(mean).div_(std)  # normalised in memory, as in lesson 13
    models, all_probs = [], []
    for f in a.with_:
        probs = torch.load(f)
        if probs.shape != (len(xv), 10): sys.exit(f'ending.py: {f} holds probabilities of shape {tuple(probs.shape)}; expected ({len(xv)}, 10) for this validation set')
        all_probs.append(probs)
    for seed in a.seeds:
        rec, probs, targs = train_one(a, dls, seed)
        f = a.probs_dir/f'e{a.epochs}-s{seed}.pt'
        f.parent.mkdir(parents=True, exist_ok=True)
        torch.save(probs, f)
        rec['probs'] = os.path.relpath(f, HERE.parent)
        models.append(rec); all_probs.append(probs)
    res = dict(epochs=a.epochs, nfs=list(a.nfs), lr=a.lr, bs=a.bs, erase=a.erase, smooth=a.smooth, small=a.small, threads=a.threads,
               n_train=len(xt), n_valid=len(xv), models=models, ensemble_with=[os.path.relpath(f, HERE.parent) for f in a.with_], torch=torch.__version__)
    if len(all_probs) > 1:
        res['ensemble_tta_accuracy'] = (sum(all_probs).argmax(1) == targs).float().mean().item()
    res['total_s'] = round(time.perf_counter() - t0, 1)
    try: res['git'] = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=HERE, capture_output=True, text=True).stdout.strip()
    except OSError: res['git'] = None
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, 'a') as f: f.write(json.dumps(res) + '\n')
    print(json.dumps(res), flush=True)
    return res


if __name__ == '__main__': main()
