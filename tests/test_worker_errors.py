"""A dataset that fails in a DataLoader worker process: the fit's error says which loader, when, and what failed.

The tests with a worker start a process (the slow tier); the last one, without workers, is fast.
"""
import gc, os, re, signal
import pytest, torch
from torch.utils.data import DataLoader
from miniai.datasets import DataLoaders

class _Bad(torch.utils.data.Dataset):
    def __init__(self, how): self.how = how
    def __len__(self): return 32
    def __getitem__(self, i):
        if i == 20:
            if self.how == 'raise': raise ValueError(f'bad item {i}')
            os.kill(os.getpid(), signal.SIGKILL)
        return torch.randn(6), i % 4

def _free_workers():
    # the failed fit's DataLoader iterator is held by the traceback's frames, in a reference cycle: collecting it shuts its
    # workers down and unregisters them, so torch's SIGCHLD handler cannot raise about a dead worker later, in another test
    gc.collect()

@pytest.mark.slow
def test_worker_raises(toy_learner, fit_error):
    dl = DataLoader(_Bad('raise'), 8, num_workers=1)
    m, e = fit_error(toy_learner(dls=DataLoaders(dl, dl)), RuntimeError)
    assert re.search(r'training DataLoader failed in epoch 0, after \d+ batches', m), m
    assert 'ValueError: bad item 20' in m and 'worker process 0' in m
    assert isinstance(e.__cause__, ValueError)
    assert m.count('\n') == 0  # one line, the worker's traceback stays in the chained error
    del e; _free_workers()

@pytest.mark.slow
def test_worker_dies(toy_learner, fit_error):
    dl = DataLoader(_Bad('kill'), 8, num_workers=1)
    m = fit_error(toy_learner(dls=DataLoaders(dl, dl)), RuntimeError)[0]
    _free_workers()
    # torch notices a dead worker wherever this process is (a signal handler): the count of batches is approximate
    assert re.search(r'training DataLoader failed in epoch 0, after \d+ batches', m), m
    assert 'worker process died' in m and 'num_workers=1' in m

def test_dataset_error_in_process_untouched(toy_learner):
    dl = DataLoader(_Bad('raise'), 8)
    with pytest.raises(ValueError, match='bad item 20'): toy_learner(dls=DataLoaders(dl, dl)).fit(1)
