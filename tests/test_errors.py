"""Wrong arguments to public functions fail at once with a ValueError naming the argument and its value.

One test per message; each asserts that the message holds the offending `name=value`, so a person can
see what to change without reading miniai's source.
"""
import pytest, torch
import matplotlib
matplotlib.use('agg')
import matplotlib.pyplot as plt
from datasets import Dataset as HFDataset, DatasetDict
import miniai.data as D
from miniai.training import Dataset, get_dls
from miniai.datasets import DataLoaders, TensorLoader, fashion_dls, get_grid

BAD_COUNTS = [0, -1, -64, 2.5, '8', True]

def _msg(e): return str(e.value)

@pytest.fixture
def tiny_ds():
    return Dataset(torch.randn(10, 3), torch.arange(10))

@pytest.fixture
def tiny_dd():
    d = {'x': [[float(i)] * 2 for i in range(6)], 'y': list(range(6))}
    return DatasetDict(train=HFDataset.from_dict(d), test=HFDataset.from_dict(d))

@pytest.mark.parametrize('v', [0, 2.5, -3])
def test_get_grid_n(v):
    with pytest.raises(ValueError) as e: get_grid(v)
    assert f'n={v!r}' in _msg(e) and 'get_grid' in _msg(e)
    plt.close('all')

@pytest.mark.parametrize('v', BAD_COUNTS)
def test_get_dls_bs(tiny_ds, v):
    with pytest.raises(ValueError) as e: get_dls(tiny_ds, tiny_ds, v)
    assert f'bs={v!r}' in _msg(e) and 'get_dls' in _msg(e)

@pytest.mark.parametrize('v', BAD_COUNTS)
def test_tensorloader_batch_size(v):
    with pytest.raises(ValueError) as e: TensorLoader(torch.zeros(4), torch.zeros(4), batch_size=v)
    assert f'batch_size={v!r}' in _msg(e) and 'TensorLoader' in _msg(e)

@pytest.mark.parametrize('v', BAD_COUNTS)
def test_fashion_dls_bs(v, monkeypatch):
    # the check comes before any data is read: loading would fail loudly if it were reached
    monkeypatch.setattr('miniai.datasets.load_fmnist', lambda *a, **k: pytest.fail('data read before bs was checked'))
    with pytest.raises(ValueError) as e: fashion_dls(v)
    assert f'bs={v!r}' in _msg(e) and 'fashion_dls' in _msg(e)

@pytest.mark.parametrize('v', BAD_COUNTS)
def test_from_dd_batch_size(tiny_dd, v):
    with pytest.raises(ValueError) as e: DataLoaders.from_dd(tiny_dd, v)
    assert f'batch_size={v!r}' in _msg(e) and 'DataLoaders.from_dd' in _msg(e)

def test_good_counts_still_work(tiny_ds, tiny_dd):
    "The checks accept what they should: plain ints and numpy/torch integers."
    import numpy as np
    assert get_dls(tiny_ds, tiny_ds, np.int64(4))[0].batch_size == 4
    assert TensorLoader(torch.zeros(5), batch_size=np.int32(2)).batch_size == 2
    assert DataLoaders.from_dd(tiny_dd, 3).valid.batch_size == 6

@pytest.mark.parametrize('v', ['yes', 'true', '1x', 'small'])
def test_miniai_small_not_a_number(monkeypatch, v):
    monkeypatch.setenv('MINIAI_SMALL', v)
    with pytest.raises(ValueError) as e: D.small_mode()
    assert f'MINIAI_SMALL={v!r}' in _msg(e)
    assert 'MINIAI_SMALL=1' in _msg(e)  # and it says what to set instead

@pytest.mark.parametrize('v,want', [('', False), ('0', False), ('1', True), (' 2 ', True), ('0.0', False)])
def test_miniai_small_numbers(monkeypatch, v, want):
    monkeypatch.setenv('MINIAI_SMALL', v)
    assert D.small_mode() is want
