"""The data paths alone, no model: seconds to deliver one epoch of batches (training and validation, batch size 256).

    python bench/data_path.py [--rounds 5] [--small] [--paths raw,fashion_dls,files,files_nocache]

Compared, interleaved in each round: `raw` (index in-memory tensors with a random permutation, as bench/run.py's raw
loop does), miniai's `fashion_dls` (`TensorLoader`), torch's `DataLoader(TensorDataset)`, lesson 04's per-item
path (Hugging Face `with_transform` + `DataLoaders.from_dd`), and lesson 15's file path as bench/run.py's `files` runner
builds it (`files`: decoded once by `cache_items`; `files_nocache`: every PNG decoded every epoch). Prints one JSON line
with the median seconds per epoch (`--paths` picks some of them).
"""
import argparse, json, statistics, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from torch.utils.data import DataLoader, TensorDataset
import run

PATHS = ('raw', 'fashion_dls', 'torch_DataLoader', 'hf_per_item', 'files', 'files_nocache')

def epoch_s(batches):
    t = time.perf_counter()
    for b in batches(): pass
    return time.perf_counter() - t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--bs', type=int, default=256)
    p.add_argument('--small', action='store_true')
    p.add_argument('--paths', default='raw,fashion_dls,torch_DataLoader,hf_per_item', help='comma-separated, from ' + ','.join(PATHS))
    a = p.parse_args(argv)
    names = a.paths.split(',')
    bad = [n for n in names if n not in PATHS]
    if bad: p.error(f'--paths: unknown {bad}; choose from {",".join(PATHS)}')
    torch.set_num_threads(2)
    xt, yt, xv, yv = run.load_tensors(a.small)
    bs = a.bs
    def raw():
        idxs = torch.randperm(len(xt))
        for i in range(0, len(xt), bs):
            b = idxs[i:i+bs]
            yield xt[b], yt[b]
        for i in range(0, len(xv), bs): yield xv[i:i+bs], yv[i:i+bs]
    from miniai.datasets import fashion_dls
    def loaders(dls): return lambda: (b for dl in (dls.train, dls.valid) for b in dl)
    def make(name):
        ns, g = argparse.Namespace(small=a.small, bs=bs, workers=0), torch.Generator().manual_seed(0)
        if name == 'raw': return raw
        if name == 'fashion_dls': return loaders(fashion_dls(bs, small=a.small))
        if name == 'torch_DataLoader':
            tdl = DataLoader(TensorDataset(xt, yt), batch_size=bs, shuffle=True), DataLoader(TensorDataset(xv, yv), batch_size=bs)
            return lambda: (b for dl in tdl for b in dl)
        if name == 'hf_per_item': return loaders(run.hf_dls(ns, g))
        return loaders(run.files_dls(ns, g, cache=name == 'files'))
    paths = {k: make(k) for k in names}
    times = {k: [] for k in paths}
    for r in range(a.rounds):
        for k, f in (paths.items() if r % 2 == 0 else reversed(paths.items())): times[k].append(epoch_s(f))
    res = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps(dict(seconds_per_epoch=res, rounds=a.rounds, bs=bs, small=a.small, n_train=len(xt), n_valid=len(xv))))


if __name__ == '__main__': main()
