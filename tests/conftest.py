"""What several test files share: the real Fashion-MNIST files, a private miniai cache, and a toy problem with a Learner on it.

The toy problem is small enough that a fit takes milliseconds. Each of these fixtures is a function (so a test
can build several, with other arguments): `toy_problem` gives tensors (a 4-class problem that a small network
learns; the two-process test's script imports it from here), `toy_dls` loaders of random items, `toy_learner` a
Learner of a linear layer on them, and `fit_error` the message of the error that a fit raises.

The tests that read Fashion-MNIST take the `fmnist_path` fixture: when the files are missing those tests fail
with the loader's message (which says how to get them), and every other test still runs.

Tiers: `@pytest.mark.slow` (pytest.ini) marks the notebook runs, the docs build and the tests that start
Python processes running torch; `make test-fast` leaves them out, `make test` runs everything.
"""
import pytest, torch
from torch import nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

@pytest.fixture(scope='session')
def fmnist_path():
    "The folder holding the four Fashion-MNIST files (never downloads); the test fails with the loader's message if there is none"
    from miniai.data import DataNotFoundError, find_fmnist
    try: return find_fmnist(download=False)
    except DataNotFoundError as e: pytest.fail(f'this test reads the real Fashion-MNIST files. {e}', pytrace=False)

@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    "miniai's cache folder for this test alone (under `tmp_path`), so that a test never reads or writes the user's"
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache'))
    return tmp_path/'cache'/'miniai'

def toy_problem(n_train=256, n_valid=203, n_in=8, n_out=4, seed=0):
    "(x_train, y_train, x_valid, y_valid): `n_in` random features, the label the argmax of a fixed random linear map"
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_valid, n_in, generator=g)
    y = (x @ torch.randn(n_in, n_out, generator=g)).argmax(1)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]

@pytest.fixture(scope='session', name='toy_problem')
def toy_problem_fixture(): return toy_problem

def _toy_dls(x=None, y=None, bs=8, valid=None, **kw):
    "A (train, valid) pair of DataLoaders, by default over 40 items of 6 random features and 4 classes, both the same items"
    from miniai.datasets import DataLoaders
    g = torch.Generator().manual_seed(0)
    if y is None: y = torch.randint(0, 4, (40,), generator=g)
    if x is None: x = torch.randn(len(y), 6, generator=g)
    return DataLoaders(DataLoader(TensorDataset(x, y), bs, **kw), valid if valid is not None else DataLoader(TensorDataset(x, y), bs))

@pytest.fixture(scope='session')
def toy_dls(): return _toy_dls

@pytest.fixture(scope='session')
def toy_learner():
    "A function giving a Learner: by default nn.Linear(6, 4) on `toy_dls()`, cross-entropy, TrainCB"
    from miniai.learner import Learner, TrainCB
    def make(model=None, dls=None, loss_func=F.cross_entropy, cbs=None, **kw):
        return Learner(model if model is not None else nn.Linear(6, 4), dls if dls is not None else _toy_dls(), loss_func,
                       cbs=[TrainCB()] if cbs is None else cbs, **kw)
    return make

@pytest.fixture(scope='session')
def fit_error():
    "A function that fits `learn` expecting `exc_type`, and returns (the message, the exception)"
    def fit(learn, exc_type, n_epochs=1, **kw):
        with pytest.raises(exc_type) as e: learn.fit(n_epochs, **kw)
        return str(e.value), e.value
    return fit
