"""Lesson 17c's classifier arms: which starting weights and which schedule make the fortunes classifier better.

    python bench/ulmfit_arms.py                     # every arm x seed x label fraction not yet in the results
    python bench/ulmfit_arms.py --small             # a tiny version (seconds), written to results/ulmfit_arms_small.json
    python bench/ulmfit_arms.py --budget-min 12     # start no new run after 12 minutes (exit code 3: run it again)

It needs the general language model (`python bench/pretrain.py`). It trains, once, the fortunes-only language model
(lesson 17's recipe) and the general one fine-tuned on the fortunes, keeping both in miniai's cache
(`miniai.pretrain.transfer_dir`); then each classifier arm, with its seed and share of the training labels, and appends
its validation accuracy to bench/results/ulmfit_arms.json as soon as it is done (a stopped run goes on where it left off).
The arms (`ARMS`): the encoder's starting weights (random; the fortunes-only model; the general model; the general model
fine-tuned on the fortunes: ULMFiT) and the schedule ('plain': every layer at one peak rate for 4 epochs; 'gradual':
ULMFiT's gradual unfreezing with discriminative rates, 4 epochs too). Settings: `miniai.pretrain.TRANSFER_CFG`.
"""
from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ARMS = [('random', 'plain'), ('random', 'gradual'), ('fortunes', 'gradual'), ('general', 'gradual'),
        ('finetuned', 'gradual'), ('finetuned', 'plain')]
FRACTION_ARMS = [('random', 'plain'), ('finetuned', 'plain'), ('finetuned', 'gradual')]  # the label-fraction curve


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--small', action='store_true')
    p.add_argument('--seeds', default='0,1,2')
    p.add_argument('--fracs', default='0.1,0.3', help='label fractions for FRACTION_ARMS (all arms get 1.0)')
    p.add_argument('--budget-min', type=float, default=None, help='start no new run after this many minutes: exit with code 3')
    a = p.parse_args(argv)
    import torch
    from miniai.pretrain import (SMALL_TRANSFER_CFG, TRANSFER_CFG, clas_accuracy, encoder_state, fortunes_task,
                                 label_fraction, train_classifier, transfer_lms)
    from miniai.text import clas_dls
    from miniai.datablock import SplitData
    cfg = SMALL_TRANSFER_CFG if a.small else TRANSFER_CFG
    out = ROOT/'bench'/'results'/('ulmfit_arms_small.json' if a.small else 'ulmfit_arms.json')
    res = json.loads(out.read_text()) if out.exists() else dict(cfg=json.loads(json.dumps(cfg)), runs=[])
    if res['cfg'] != json.loads(json.dumps(cfg)): sys.exit(f'{out} was made with other settings: move it away to start again')
    t0 = time.perf_counter()
    log = lambda s: print(f'[{time.strftime("%H:%M:%S")} +{time.perf_counter() - t0:5.0f}s] {s}', flush=True)
    task = fortunes_task(cfg, small=a.small)
    lms = transfer_lms(task, cfg, small=a.small, log=log)
    seeds, fracs = [int(s) for s in a.seeds.split(',')], [float(f) for f in a.fracs.split(',')]
    todo = [(w, s, 1.0, seed) for seed in seeds for w, s in ARMS] + [(w, s, f, seed) for f in fracs for seed in seeds for w, s in FRACTION_ARMS]
    done = {(r['weights'], r['schedule'], r['frac'], r['seed']) for r in res['runs']}
    valid_dl = clas_dls(task.clas, bs=cfg['clas_bs']).valid
    for w, s, f, seed in todo:
        if (w, s, f, seed) in done: continue
        if a.budget_min is not None and time.perf_counter() - t0 > a.budget_min * 60:
            log('time budget spent: run the same command again to go on'); return 3
        clas = label_fraction(task.clas, f, seed)
        t = time.perf_counter()
        learn = train_classifier(clas, task.vocab, task.classes, None if w == 'random' else encoder_state(lms[w]), s, cfg, seed)
        secs = time.perf_counter() - t
        acc, train_acc = clas_accuracy(learn.model, valid_dl), clas_accuracy(learn.model, clas_dls(SplitData(clas.train, clas.train), bs=cfg['clas_bs']).valid)
        res['runs'].append(dict(weights=w, schedule=s, frac=f, seed=seed, n_train=len(clas.train), acc=acc,
                                train_acc=train_acc, secs=secs, when=time.strftime('%Y-%m-%d %H:%M:%S')))
        out.write_text(json.dumps(res, indent=1))
        log(f'{w:9s} {s:7s} labels {f:4.0%} seed {seed}: validation accuracy {acc:.3f} (training texts {train_acc:.3f}), {secs:.0f} s')
    return 0


if __name__ == '__main__': sys.exit(main())
