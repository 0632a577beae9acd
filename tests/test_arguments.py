"""Wrong arguments to public functions fail at once with an error naming the argument and its value.

One test per message; each asserts that the message holds the offending `name=value`, so a person can see what
to change without reading miniai's source: the counts of the data helpers (lessons 03-04), `MINIAI_SMALL`, the
sizes of `conv` and the devices (lesson 06), the schedules (lesson 11).
"""
import pytest, torch
import matplotlib
matplotlib.use('agg')
import matplotlib.pyplot as plt
from datasets import Dataset as HFDataset, DatasetDict
import miniai.data as D
from miniai.training import Dataset, get_dls
from miniai.datasets import DataLoaders, TensorLoader, fashion_dls, get_grid
from miniai.learner import TrainCB, DeviceCB
from miniai.conv import conv, to_device, available_devices
from miniai.sched import one_cycle, combine_scheds, sched_no, ParamSchedCB

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
# ---------------------------------------------------------------- conv and devices (lesson 06)

@pytest.mark.parametrize('k,v', [('ni', 0), ('nf', -1), ('ks', 0), ('stride', 0), ('ks', 2.5), ('ni', True), ('nf', '8')])
def test_conv_sizes(k, v):
    with pytest.raises(ValueError) as e: conv(**({'ni': 1, 'nf': 4} | {k: v}))
    assert f'{k}={v!r}' in _msg(e) and _msg(e).startswith('conv: ')

@pytest.mark.parametrize('dev', ['cuda', 'cuda:0', 'mps'])
def test_to_device_unavailable(dev):
    if dev.split(':')[0] in available_devices(): pytest.skip(f'{dev} is available on this machine')
    with pytest.raises(ValueError) as e: to_device({'x': (torch.ones(2),)}, dev)
    assert f'device={dev!r}' in _msg(e) and 'not available' in _msg(e)
    assert 'Choose one of: ' + ', '.join(available_devices()) in _msg(e)
    assert e.value.__cause__ is not None  # PyTorch's own error stays attached

@pytest.mark.parametrize('dev', ['cuda', 'mps'])
def test_device_cb_unavailable(dev, toy_learner, fit_error):
    "DeviceCB to a device this machine lacks: miniai's message, not torch's bare AssertionError from `model.to`"
    if dev in available_devices(): pytest.skip(f'{dev} is available on this machine')
    learn = toy_learner(cbs=[TrainCB(), DeviceCB(dev)])
    m, e = fit_error(learn, ValueError)
    assert f'device={dev!r}' in m and 'not available' in m and e.__cause__ is not None
    assert next(learn.model.parameters()).device.type == 'cpu'  # the model was not moved
    learn.cbs[1].device = 'cpu'
    learn.fit(1)  # and the Learner fits once the device is fixed

def test_to_device_good_devices():
    assert to_device(torch.ones(1), 'cpu').device.type == 'cpu' and to_device([torch.ones(1)], 'meta')[0].device.type == 'meta'
# ---------------------------------------------------------------- schedules (lesson 11)

@pytest.mark.parametrize('k,v', [('pct_start', 1.2), ('pct_start', 0), ('pct_start', -0.3), ('pct_start', 1),
                                 ('max_lr', 0), ('max_lr', -1e-3), ('div_factor', 0.), ('final_div_factor', -1e4)])
def test_one_cycle_args(k, v):
    with pytest.raises(ValueError) as e: one_cycle(**{'max_lr': 0.1, k: v})
    assert f'{k}={v!r}' in _msg(e) and _msg(e).startswith('one_cycle: ')

@pytest.mark.parametrize('pcts', [[0.3, 0.6], [1.2, -0.2], [0.5, 0.5, 0.]])
def test_combine_scheds_pcts(pcts):
    with pytest.raises(ValueError) as e: combine_scheds(pcts, [sched_no(1, 1)] * len(pcts))
    assert str(pcts) in _msg(e) and 'sum to 1' in _msg(e)

def test_param_sched_not_a_schedule():
    with pytest.raises(TypeError) as e: ParamSchedCB(lr=0.1, mom=lambda pos: 0.9)
    assert 'lr=0.1' in _msg(e) and 'mom=' not in _msg(e)
