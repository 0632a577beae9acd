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

# ---------------------------------------------------------------- the Learner's checks (lesson 08)
# Each mistake is made on a tiny problem; the error must name the offending values, chain PyTorch's error where
# there is one, and leave the Learner able to fit again once the mistake is fixed.

import functools, math, os, re, signal, subprocess, sys, warnings
from pathlib import Path
import fastcore.all as fc
from torch import nn, optim
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from miniai.learner import (Learner, TrainLearner, TrainCB, DeviceCB, MetricsCB, ProgressCB, Accuracy, Callback,
                            CancelFitException, CancelBatchException)
from miniai.checks import NonFiniteLossError, NaNCheckCB, SanityCheckCB

def _blobs(x=None, y=None, bs=8, valid=None, **kw):
    g = torch.Generator().manual_seed(0)
    if y is None: y = torch.randint(0, 4, (40,), generator=g)
    if x is None: x = torch.randn(len(y), 6, generator=g)
    tr = DataLoader(TensorDataset(x, y), bs, **kw)
    return DataLoaders(tr, valid if valid is not None else DataLoader(TensorDataset(x, y), bs))

def _learner(model=None, dls=None, loss_func=F.cross_entropy, cbs=None, **kw):
    return Learner(model if model is not None else nn.Linear(6, 4), dls if dls is not None else _blobs(), loss_func,
                   cbs=[TrainCB()] if cbs is None else cbs, **kw)

def _fit_error(learn, exc_type, n_epochs=1, **kw):
    with pytest.raises(exc_type) as e: learn.fit(n_epochs, **kw)
    return str(e.value), e.value

def test_input_dtype_float64():
    m, e = _fit_error(_learner(dls=_blobs(x=torch.randn(40, 6, dtype=torch.float64))), TypeError)
    assert 'torch.float64' in m and 'torch.float32' in m and 'shape (8, 6)' in m
    assert isinstance(e.__cause__, RuntimeError)  # PyTorch's own error, chained

def test_input_dtype_uint8_images():
    x = torch.randint(0, 255, (40, 1, 4, 4), dtype=torch.uint8)
    model = nn.Sequential(nn.Conv2d(1, 4, 4), nn.Flatten())
    m, _ = _fit_error(_learner(model, _blobs(x=x)), TypeError)
    assert 'torch.uint8' in m and 'shape (8, 1, 4, 4)' in m and 'x.float()/255' in m

def test_input_device():
    m, e = _fit_error(_learner(nn.Linear(6, 4, device='meta')), RuntimeError)
    assert 'on meta' in m and 'on cpu' in m and 'DeviceCB()' in m and e.__cause__ is not None

def test_input_device_train_learner():
    learn = TrainLearner(nn.Linear(6, 4, device='meta'), _blobs(), F.cross_entropy)
    m, _ = _fit_error(learn, RuntimeError)
    assert 'on meta' in m and 'DeviceCB()' in m

def test_model_error_not_about_inputs_is_untouched():
    "A model bug unrelated to dtype or device keeps PyTorch's own error."
    with pytest.raises(RuntimeError, match='mat1 and mat2 shapes'): _learner(nn.Linear(5, 4)).fit(1)

def test_missing_flatten():
    model = nn.Sequential(nn.Linear(6, 4), nn.Unflatten(1, (4, 1, 1)))
    m, e = _fit_error(_learner(model), ValueError)
    assert '(8, 4, 1, 1)' in m and '(8,)' in m and 'nn.Flatten()' in m and e.__cause__ is not None

def test_one_hot_targets():
    y = torch.arange(40) % 4
    m, _ = _fit_error(_learner(dls=_blobs(y=F.one_hot(y, 4))), ValueError)
    assert 'torch.int64 tensor of shape (8, 4)' in m and 'argmax(1)' in m

def test_float_class_targets():
    m, _ = _fit_error(_learner(dls=_blobs(y=(torch.arange(40) % 4).float())), ValueError)
    assert 'torch.float32 tensor of shape (8,)' in m and 'y.long()' in m

def test_batch_size_mismatch():
    model = nn.Sequential(nn.Linear(6, 4), nn.Flatten(0), nn.Unflatten(0, (-1, 8)))  # (8, 4) -> (4, 8)
    m, _ = _fit_error(_learner(model), ValueError)
    assert 'shape (4, 8)' in m and 'shape (8,)' in m and '4 rows' in m

def test_mse_broadcast():
    x = torch.randn(40, 1); y = 2*x[:, 0]
    m, _ = _fit_error(_learner(nn.Linear(1, 1), _blobs(x=x, y=y), F.mse_loss), ValueError)
    assert 'mse_loss' in m and '(8, 1)' in m and '(8,)' in m and 'broadcast' in m and 'y[:, None]' in m

def test_loss_not_scalar():
    m, _ = _fit_error(_learner(loss_func=functools.partial(F.cross_entropy, reduction='none')), ValueError)
    assert 'cross_entropy' in m and 'shape (8,)' in m and "reduction='mean'" in m

def test_loss_not_scalar_custom_steps():
    "Steps written in a Learner subclass get the scalar check too."
    class MyLearner(TrainLearner):
        def get_loss(self): self.loss = (self.preds - self.preds.mean()).pow(2).mean(1)
    m, _ = _fit_error(MyLearner(nn.Linear(6, 4), _blobs(), F.cross_entropy), ValueError)
    assert 'shape (8,)' in m

def test_batch_not_a_tuple():
    x = torch.randn(40, 6)
    m, _ = _fit_error(_learner(dls=DataLoaders(DataLoader(x, 8), DataLoader(x, 8))), TypeError)
    assert 'torch.float32 tensor of shape (8, 6)' in m and 'TrainCB' in m and 'batch[:1]' in m

def test_batch_a_dict():
    ds = [{'x': torch.randn(6), 'y': 1} for _ in range(16)]
    m, _ = _fit_error(_learner(dls=DataLoaders(DataLoader(ds, 8), DataLoader(ds, 8))), TypeError)
    assert "dict with keys ['x', 'y']" in m and 'as_tuple=True' in m

def test_batch_not_a_tuple_train_learner():
    x = torch.randn(40, 6)
    m, _ = _fit_error(TrainLearner(nn.Linear(6, 4), DataLoaders(DataLoader(x, 8), DataLoader(x, 8)), F.cross_entropy), TypeError)
    assert 'TrainLearner' in m and 'batch[0]' in m and 'shape (8, 6)' in m

def test_empty_training_loader():
    m, _ = _fit_error(_learner(dls=_blobs(x=torch.randn(5, 6), y=torch.zeros(5, dtype=torch.long), bs=8, drop_last=True)), ValueError)
    assert 'training DataLoader is empty' in m and '5 items' in m and 'batch_size=8' in m and 'drop_last=False' in m

def test_empty_validation_loader():
    empty = DataLoader(TensorDataset(torch.zeros(0, 6), torch.zeros(0, dtype=torch.long)), 8)
    m, _ = _fit_error(_learner(dls=_blobs(valid=empty)), ValueError)
    assert 'validation DataLoader is empty' in m and 'no items' in m and 'valid=False' in m

def test_empty_loader_without_len():
    class NoLen:
        def __iter__(self): return iter([])
    m, _ = _fit_error(_learner(dls=(NoLen(), NoLen())), ValueError)
    assert 'training DataLoader is empty' in m and 'NoLen' in m

def test_empty_list_of_batches_is_allowed():
    "A literal empty list means no batches on purpose (lesson 14 validates on [] to skip it): no error."
    x, y = torch.randn(8, 6), torch.randint(0, 4, (8,))
    _learner(dls=([(x, y)], [])).fit(1)

def _exploding(**kw):
    x = torch.randn(400, 1); y = 3*x + 2
    return Learner(nn.Linear(1, 1), _blobs(x=x, y=y, bs=16), F.mse_loss, lr=5., cbs=[TrainCB()], **kw)

def test_nan_loss_stops_training():
    learn = _exploding()
    m, e = _fit_error(learn, NonFiniteLossError, 5)
    assert isinstance(e, FloatingPointError)
    assert ('became inf' in m or 'became nan' in m) and 'lr=5' in m and 'checks=False' in m
    epoch, batch = map(int, re.search(r'at epoch (\d+), batch (\d+)', m).groups())
    assert 0 <= epoch < 5 and 0 <= batch < 25
    learn.checks = False; learn.fit(1)  # the Learner still works (with NaN weights, now that nothing stops it)

def test_nan_loss_first_bad_batch_exact():
    "The report names exactly the first non-finite batch, even when it is read many batches later."
    bad_at = (1, 3)
    class Poison(Callback):
        order = 50
        def after_loss(self, learn):
            if learn.training and (learn.epoch, learn.iter) == bad_at: learn.loss = learn.loss * float('nan')
    learn = _learner(cbs=[TrainCB(), Poison()], lr=0.01)
    m, _ = _fit_error(learn, NonFiniteLossError, 3)
    assert 'became nan at epoch 1, batch 3 ' in m and 'lr=0.01' in m

def test_nan_check_every():
    "With every=2 the error comes within two batches of the bad one."
    seen = []
    class Poison(Callback):
        order = 50
        def after_loss(self, learn):
            if learn.training and learn.iter == 1: learn.loss = learn.loss / 0.
        def after_batch(self, learn): seen.append(learn.iter)
    learn = _learner(cbs=[TrainCB(), Poison(), NaNCheckCB(every=2)])
    m, _ = _fit_error(learn, NonFiniteLossError)
    assert 'became inf at epoch 0, batch 1 ' in m and seen == [0, 1]

def test_checks_off():
    learn = _exploding(checks=False)
    learn.fit(5)  # no error: the check is off
    assert not torch.isfinite(learn.model.weight).all()
    # and nothing is checked at the first batch either: PyTorch's own error comes through
    with pytest.raises(RuntimeError, match='not on the expected device'): _learner(nn.Linear(6, 4, device='meta'), checks=False).fit(1)

def test_lr_find_short_data_warns_and_runs():
    "Data too short for the rate to reach 1: the finder runs the rates it can, plots them and warns once, saying what to change"
    learn = _learner(dls=_blobs(bs=20))  # 2 batches
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always')
        f = learn.lr_find(plot=False)
    assert len(ws) == 1 and issubclass(ws[0].category, UserWarning)
    m = str(ws[0].message)
    assert len(f.lrs) == 20 and f.lrs[0] == 1e-5 and 'after 20 batches (10 epochs)' in m and 'max_epochs=23' in m, m
    assert f.lrs[0] <= f.suggestion*10 <= f.lrs[-1]
    assert len(f.plot().lines[0].get_xdata()) == 20
    plt.close('all')
    assert learn.opt is None and learn.cbs[0].__class__ is TrainCB and len(learn.cbs) == 1

def test_lr_find_gamma():
    with pytest.raises(ValueError) as e: _learner().lr_find(gamma=1., plot=False)
    assert 'gamma=1.0' in _msg(e)

def test_lr_find_stops_when_the_loss_rises():
    torch.manual_seed(0)
    learn = _learner(dls=_blobs(x=torch.randn(400, 6), y=torch.arange(400) % 4, bs=8))
    w = learn.model.weight.detach().clone()
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # the loss rose before the data ran out: no warning
        f = learn.lr_find(plot=False)
    assert f.lrs[0] == 1e-5 and all(b/a == pytest.approx(1.3) for a, b in zip(f.lrs, f.lrs[1:]))
    # it went on while the loss stayed within 3x the lowest so far, and stopped at the first loss above that (or not finite)
    assert all(l <= 3*min(f.losses[:i+1]) for i, l in enumerate(f.losses[:-1]))
    assert not math.isfinite(f.losses[-1]) or f.losses[-1] > 3*min(f.losses)
    sm = f.smoothed()  # the suggestion: a tenth of the rate where the smoothed loss is lowest
    assert f.suggestion == f.lrs[sm.index(min(sm))]/10 and len(f.lrs) < 500
    assert torch.equal(w, learn.model.weight) and learn.opt is None

# ---------------------------------------------------------------- defects found by a new user (issue 19)

def test_all_batches_cancelled_is_not_an_empty_loader():
    "A callback may skip every batch on purpose (CancelBatchException in before_batch): the loader is not empty"
    class SkipAll(Callback):
        def before_batch(self, learn): raise CancelBatchException()
    learn = _learner(cbs=[TrainCB(), SkipAll()])
    w = learn.model.weight.detach().clone()
    learn.fit(2)
    assert torch.equal(w, learn.model.weight)  # nothing trained, and no error

def test_metrics_targets_follow_n_inp():
    "MetricsCB takes the targets after TrainCB's n_inp inputs, not batch[1]"
    class Two(nn.Module):
        def __init__(self): super().__init__(); self.lin = nn.Linear(6, 4)
        def forward(self, x, w): return self.lin(x*w)
    x, y, w = torch.randn(40, 6), torch.arange(40) % 4, torch.full((40, 1), 0.5)
    dl = DataLoader(TensorDataset(x, w, y), 16)
    metrics = MetricsCB(Accuracy())
    learn = Learner(Two(), DataLoaders(dl, dl), F.cross_entropy, cbs=[TrainCB(n_inp=2), metrics])
    learn.fit(1, train=False)
    with torch.no_grad(): p = learn.model(x, w)
    assert metrics.history[-1]['Accuracy'] == pytest.approx((p.argmax(1) == y).float().mean().item())
    assert metrics.history[-1]['loss'] == pytest.approx(F.cross_entropy(p, y).item(), rel=1e-5)

class _Count(Callback):
    def __init__(self): self.n = 0
    def after_batch(self, learn): self.n += 1

@pytest.mark.parametrize('make', [list, tuple, fc.L, lambda cbs: (cb for cb in cbs)], ids=['list', 'tuple', 'L', 'generator'])
def test_cbs_any_iterable(make):
    count, extra = _Count(), _Count()
    learn = Learner(nn.Linear(6, 4), _blobs(), F.cross_entropy, cbs=make([TrainCB(), count]))
    learn.fit(1, cbs=make([extra]))
    assert count.n == extra.n == 10 and len(learn.cbs) == 2  # 5 training + 5 validation batches; `extra` gone after the fit

def test_cbs_plus_fastcore_L():
    "The course's habit: Learner(..., cbs=cbs + fc.L(xtra)) and learn.fit(1, cbs=[cp] + fc.L(cbs))"
    cbs, xtra, cp = [TrainCB()], [_Count()], _Count()
    learn = Learner(nn.Linear(6, 4), _blobs(), F.cross_entropy, cbs=cbs + fc.L(xtra))
    learn.fit(1, cbs=[cp] + fc.L([_Count()]))
    assert xtra[0].n == cp.n == 10 and learn.cbs == cbs + xtra

def test_cbs_single_callback():
    count = _Count()
    _learner(cbs=TrainCB()).fit(1, cbs=count)
    assert count.n == 10

def test_dls_one_dataloader():
    m, e = _fit_error(_learner(dls=_blobs().train), TypeError)
    assert 'dls is one DataLoader' in m and 'DataLoaders(train_dl, valid_dl)' in m and 'valid=False' in m

def test_dls_without_validation_loader():
    train = _blobs().train
    m, _ = _fit_error(_learner(dls=(train,)), ValueError)
    assert 'no validation loader' in m and 'dls[1]' in m and 'valid=False' in m
    _learner(dls=(train,)).fit(1, valid=False)  # which works

def test_dls_left_out():
    "Learner(model) without data: the default dls=(0,) gives no batches"
    m, _ = _fit_error(Learner(nn.Linear(6, 4), cbs=[TrainCB()]), TypeError)
    assert 'The training loader is 0 (int)' in m and 'DataLoaders(train_dl, valid_dl)' in m

@pytest.mark.parametrize('where', ['Learner', 'fit'])
def test_callback_class_not_instance(where):
    learn = _learner(cbs=[TrainCB] if where == 'Learner' else None)
    m, _ = _fit_error(learn, TypeError, cbs=[MetricsCB] if where == 'fit' else None)
    cls = 'TrainCB' if where == 'Learner' else 'MetricsCB'
    assert f'cbs holds the class {cls}, not a callback' in m and f'{cls}()' in m
    assert learn.opt is None and len(learn.cbs) == 1  # nothing ran, and fit's callbacks are not kept

def test_not_a_callback():
    m, _ = _fit_error(_learner(), TypeError, cbs=[print])
    assert 'cbs holds <built-in function print>' in m and 'Callback' in m

def test_steps_missing():
    m, _ = _fit_error(_learner(cbs=[]), TypeError)
    assert 'nothing supplies the step(s) predict, get_loss, backward, step, zero_grad' in m and 'TrainCB()' in m
    _learner(cbs=[]).fit(1, train=False, cbs=TrainCB())  # validation alone needs only predict and get_loss

@pytest.mark.parametrize('lr, exc, says', [(None, TypeError, "lr=None): the learning rate must be a number, such as lr=0.1, not a NoneType"),
                                           ('0.1', TypeError, "(without the quotes: lr=0.1)"),
                                           ('fast', TypeError, "lr='fast'): the learning rate must be a number, such as lr=0.1, not a str"),
                                           (-0.1, ValueError, 'lr=-0.1): the learning rate must be a finite number of 0 or more'),
                                           (float('nan'), ValueError, 'lr=nan)')])
def test_bad_lr(lr, exc, says):
    m, _ = _fit_error(_learner(lr=lr), exc)
    assert m.startswith('Learner(..., lr=') and says in m, m
    if lr is not None:  # fit(lr=None) means the Learner's
        m, _ = _fit_error(_learner(), exc, lr=lr)
        assert m.startswith('fit(..., lr=') and says in m, m

@pytest.mark.parametrize('f, says', [('adam', 'opt_func=optim.Adam, torch'), ('sgd', 'opt_func=optim.SGD, torch'),
                                     (optim.SGD(nn.Linear(1, 1).parameters(), 0.1), 'opt_func=optim.SGD: the Learner builds the optimizer itself')])
def test_bad_opt_func(f, says):
    m, _ = _fit_error(_learner(opt_func=f), TypeError)
    assert says in m and 'not a function that builds an optimizer' in m, m

def test_model_a_function():
    w = torch.randn(6, 4, requires_grad=True)
    def model(x): return x @ w
    m, _ = _fit_error(_learner(model), TypeError)
    assert 'model is the function model, not an nn.Module' in m and 'nn.Sequential' in m

@pytest.mark.parametrize('n', [2.5, -1, 0, '3', True])
def test_bad_n_epochs(n):
    learn = _learner()
    w = learn.model.weight.detach().clone()
    m, _ = _fit_error(learn, ValueError, n)
    assert m == f'fit: n_epochs must be a positive int, got n_epochs={n!r}'
    assert torch.equal(w, learn.model.weight) and learn.opt is None  # checked before anything ran

def test_metric_plain_function():
    "A function of (preds, targets) is a metric, averaged by batch size as Accuracy is (the 2019 lessons' way)"
    def frac_right(preds, targs): return (preds.argmax(1) == targs).float().mean()
    fn, acc = MetricsCB(frac_right), MetricsCB(acc=Accuracy())
    learn = _learner(dls=_blobs(bs=16), cbs=[TrainCB(), fn, acc])  # 40 items: batches of 16, 16 and 8
    learn.fit(1, train=False)
    x, y = learn.dls.valid.dataset.tensors
    with torch.no_grad(): whole = (learn.model(x).argmax(1) == y).float().mean().item()
    assert fn.history[-1]['frac_right'] == pytest.approx(whole) == pytest.approx(acc.history[-1]['acc'])

@pytest.mark.parametrize('bad, says', [('accuracy', "acc='accuracy' is not a metric"), (Accuracy, 'pass an instance, Accuracy()')])
def test_metric_not_a_metric(bad, says):
    with pytest.raises(TypeError) as e: MetricsCB(acc=bad)
    assert says in _msg(e)

def test_targets_out_of_range():
    m, e = _fit_error(_learner(nn.Linear(6, 2), _blobs(y=torch.arange(40) % 7)), ValueError)
    assert 'The targets go up to 6 but the model gives 2 scores per item' in m and '7 outputs' in m and e.__cause__ is not None

def test_targets_negative():
    m, _ = _fit_error(_learner(dls=_blobs(y=torch.arange(40) % 4 - 1)), ValueError)
    assert 'The targets go down to -1, but class indices run from 0 to 3' in m

def test_checks_on_with_the_learner_alone():
    "`from miniai.learner import Learner` alone gets the checks, imported when fit runs (not at import: no import cycle)"
    code = """if True:
        import sys, torch
        from torch import nn
        from miniai.learner import Learner, TrainCB
        assert 'miniai.checks' not in sys.modules
        x, y = torch.randn(8, 6, dtype=torch.float64), torch.zeros(8, dtype=torch.long)
        try: Learner(nn.Linear(6, 4), ([(x, y)], [(x, y)]), torch.nn.functional.cross_entropy, cbs=[TrainCB()]).fit(1)
        except TypeError as e: print(e)
        assert 'miniai.checks' in sys.modules"""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get('PYTHONPATH', '')]))
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "The model's parameters are torch.float32 but its input is a torch.float64 tensor" in r.stdout

# ---------------------------------------------------------------- DataLoader worker processes

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
    import gc
    gc.collect()

def test_worker_raises():
    dl = DataLoader(_Bad('raise'), 8, num_workers=1)
    m, e = _fit_error(_learner(dls=DataLoaders(dl, dl)), RuntimeError)
    assert re.search(r'training DataLoader failed in epoch 0, after \d+ batches', m), m
    assert 'ValueError: bad item 20' in m and 'worker process 0' in m
    assert isinstance(e.__cause__, ValueError)
    assert m.count('\n') == 0  # one line, the worker's traceback stays in the chained error
    del e; _free_workers()

def test_worker_dies():
    dl = DataLoader(_Bad('kill'), 8, num_workers=1)
    m = _fit_error(_learner(dls=DataLoaders(dl, dl)), RuntimeError)[0]
    _free_workers()
    # torch notices a dead worker wherever this process is (a signal handler): the count of batches is approximate
    assert re.search(r'training DataLoader failed in epoch 0, after \d+ batches', m), m
    assert 'worker process died' in m and 'num_workers=1' in m

def test_dataset_error_in_process_untouched():
    dl = DataLoader(_Bad('raise'), 8)
    with pytest.raises(ValueError, match='bad item 20'): _learner(dls=DataLoaders(dl, dl)).fit(1)

# ---------------------------------------------------------------- faults leave the Learner usable

EVENTS = [f'{w}_{u}' for u in ('fit', 'epoch', 'batch') for w in ('before', 'after')]
EVENTS += ['after_predict', 'after_loss', 'after_backward', 'after_step']

class _RaiseAt(Callback):
    "Raise `exc` the first time event `ev` fires in a training pass (or at all, for fit events)"
    def __init__(self, ev, exc, order=0):
        self.exc, self.order = exc, order
        setattr(self, ev, self.fail)
    def fail(self, learn): raise self.exc

def _hooked(learn):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in learn.model.modules())

@pytest.mark.parametrize('order', [-5, 50, 200])  # before, between and after the other callbacks
@pytest.mark.parametrize('exc', [ValueError('boom'), KeyboardInterrupt()], ids=['error', 'interrupt'])
@pytest.mark.parametrize('ev', EVENTS)
def test_fault_in_any_event(ev, exc, order, capsys):
    from miniai.activations import ActivationStats
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))
    metrics, stats = MetricsCB(Accuracy()), ActivationStats(lambda m: isinstance(m, nn.Linear))
    keep = [TrainCB(), DeviceCB('cpu'), metrics, ProgressCB()]
    learn = Learner(model, _blobs(), F.cross_entropy, lr=0.1, cbs=list(keep))
    model.eval()
    old_log = metrics.log_fn
    with pytest.raises(type(exc)): learn.fit(2, cbs=[stats, _RaiseAt(ev, exc, order)])
    assert learn.cbs == keep                      # fit-only callbacks gone (the checks included)
    assert _hooked(learn) == 0                    # hooks removed
    assert model.training is False                # the mode it had before fit
    assert all(p.grad is None for p in model.parameters())  # no stale gradients
    assert metrics.log_fn is old_log              # ProgressCB gave the metrics their printer back
    w = model[0].weight.detach().clone()
    learn.fit(1, cbs=[stats])                     # and it trains again, hooks and all
    assert not torch.equal(w, model[0].weight) and len(stats.hooks) == 2 and _hooked(learn) == 0
    assert len(metrics.history) and metrics.history[-1]['epoch'] == 0

@pytest.mark.parametrize('ev', ['before_fit', 'before_epoch', 'after_predict', 'after_loss'])
def test_fault_first_fit_before_callbacks_started(ev, tmp_path):
    "A failure before the other callbacks' before_fit ran: their cleanup_fit must still work (first fit ever)."
    cbs = [TrainCB(), MetricsCB(Accuracy()), ProgressCB(plot=True, fname=tmp_path/'loss.png')]
    learn = Learner(nn.Linear(6, 4), _blobs(), F.cross_entropy, cbs=cbs)
    with pytest.raises(ValueError, match='boom'): learn.fit(1, cbs=_RaiseAt(ev, ValueError('boom'), order=-10))
    learn.fit(1)

def test_lr_find_fault_restores():
    "Ctrl-C during lr_find: the weights and the optimizer are put back, the finder is gone, and fit works."
    learn = _learner(dls=_blobs(x=torch.randn(400, 6), y=torch.arange(400) % 4))
    learn.fit(1)
    opt, before = learn.opt, {k: v.clone() for k, v in learn.model.state_dict().items()}
    class Stop(Callback):
        n = 0
        def after_batch(self, learn):
            self.n += 1
            if self.n == 5: raise KeyboardInterrupt
    stop = Stop()
    learn.cbs.append(stop)
    with pytest.raises(KeyboardInterrupt): learn.lr_find(plot=False)
    learn.cbs.remove(stop)
    assert learn.opt is opt and len(learn.cbs) == 1
    for k, v in learn.model.state_dict().items(): assert torch.equal(v, before[k]), k
    learn.fit(1)

# ---------------------------------------------------------------- conv and to_device (lesson 06), schedules (lesson 11)

from miniai.conv import conv, to_device, available_devices
from miniai.sched import one_cycle, combine_scheds, sched_no, ParamSchedCB

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
def test_device_cb_unavailable(dev):
    "DeviceCB to a device this machine lacks: miniai's message, not torch's bare AssertionError from `model.to`"
    if dev in available_devices(): pytest.skip(f'{dev} is available on this machine')
    learn = _learner(cbs=[TrainCB(), DeviceCB(dev)])
    m, e = _fit_error(learn, ValueError)
    assert f'device={dev!r}' in m and 'not available' in m and e.__cause__ is not None
    assert next(learn.model.parameters()).device.type == 'cpu'  # the model was not moved
    learn.cbs[1].device = 'cpu'
    learn.fit(1)  # and the Learner fits once the device is fixed

def test_to_device_good_devices():
    assert to_device(torch.ones(1), 'cpu').device.type == 'cpu' and to_device([torch.ones(1)], 'meta')[0].device.type == 'meta'

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
