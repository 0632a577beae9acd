"""Pretrain lesson 17's AWD-LSTM language model on the general English corpus of lesson 17a (lesson 17c reads the result).

    python bench/pretrain.py                       # train, or go on training, until done
    python bench/pretrain.py --budget-min 14       # at most 14 minutes in this process, then save and exit (code 3)
    python bench/pretrain.py --small               # a tiny model on a tiny slice, in a folder of its own (seconds)

The run lives in miniai's cache, `~/.cache/miniai/pretrain/<name>/` (`miniai.pretrain.pretrain_dir`): the numericalized
corpus (`data.pt`), a checkpoint while it trains (`checkpoint.pt`: weights, optimizer, position in the data, random
state), and at the end the weights with their vocabulary and settings (`lm.pt`) and `record.json`: the SHA-256 of
`lm.pt`, the settings, the held-out perplexity measured during training, the training loss, the time, tokens/s.
A run stopped at any point (a budget, Ctrl-C, a crash after a checkpoint) goes on from its last checkpoint when the
same command runs again; on a 2-core machine it runs in chunks so that other work can take the cores in between:

    until flock /tmp/cpu.lock python bench/pretrain.py --budget-min 14; [ $? -ne 3 ]; do :; done

Settings: `miniai.pretrain.PRETRAIN_CFG` (the sizes of lesson 17's models, one pass over the corpus, batches of 64x70).
"""
from __future__ import annotations
import argparse, sys, time
from pathlib import Path
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--budget-min', type=float, default=None, help='save and exit (code 3) after this many minutes')
    p.add_argument('--small', action='store_true', help='a tiny model on a tiny slice of the corpus')
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s own choice)')
    a = p.parse_args(argv)
    import torch
    from miniai.pretrain import PRETRAIN_CFG, SMALL_PRETRAIN_CFG, pretrain_dir, pretrain_lm
    if a.threads: torch.set_num_threads(a.threads)
    cfg = SMALL_PRETRAIN_CFG if a.small else PRETRAIN_CFG
    folder = pretrain_dir(small=a.small)
    t0 = time.perf_counter()
    log = lambda s: print(f'[{time.strftime("%H:%M:%S")} +{time.perf_counter() - t0:5.0f}s] {s}', flush=True)
    log(f'run folder {folder}')
    done = pretrain_lm(folder, cfg, small=a.small, budget_s=None if a.budget_min is None else a.budget_min * 60, log=log)
    if done: log(f'done: {folder/"lm.pt"}')
    return 0 if done else 3


if __name__ == '__main__': sys.exit(main())
