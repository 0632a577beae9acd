"""The Learner's checks at fit (miniai.checks, lesson 08b): a mistake in the data, the model, the loss or the arguments.

Each mistake is made on a tiny problem (conftest's `toy_learner`); the error must name the offending values,
chain PyTorch's error where there is one, and leave the Learner able to fit again once the mistake is fixed.
"""
import functools, os, re, subprocess, sys
from pathlib import Path
import pytest, torch
from torch import nn, optim
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from miniai.datasets import DataLoaders
from miniai.learner import Learner, TrainLearner, TrainCB, MetricsCB, Callback
from miniai.checks import NonFiniteLossError, NaNCheckCB

# ---------------------------------------------------------------- inputs, targets and losses

def test_input_dtype_float64(toy_learner, toy_dls, fit_error):
    m, e = fit_error(toy_learner(dls=toy_dls(x=torch.randn(40, 6, dtype=torch.float64))), TypeError)
    assert 'torch.float64' in m and 'torch.float32' in m and 'shape (8, 6)' in m
    assert isinstance(e.__cause__, RuntimeError)  # PyTorch's own error, chained

def test_input_dtype_uint8_images(toy_learner, toy_dls, fit_error):
    x = torch.randint(0, 255, (40, 1, 4, 4), dtype=torch.uint8)
    model = nn.Sequential(nn.Conv2d(1, 4, 4), nn.Flatten())
    m, _ = fit_error(toy_learner(model, toy_dls(x=x)), TypeError)
    assert 'torch.uint8' in m and 'shape (8, 1, 4, 4)' in m and 'x.float()/255' in m

def test_input_device(toy_learner, fit_error):
    m, e = fit_error(toy_learner(nn.Linear(6, 4, device='meta')), RuntimeError)
    assert 'on meta' in m and 'on cpu' in m and 'DeviceCB()' in m and e.__cause__ is not None

def test_input_device_train_learner(toy_dls, fit_error):
    learn = TrainLearner(nn.Linear(6, 4, device='meta'), toy_dls(), F.cross_entropy)
    m, _ = fit_error(learn, RuntimeError)
    assert 'on meta' in m and 'DeviceCB()' in m

def test_model_error_not_about_inputs_is_untouched(toy_learner):
    "A model bug unrelated to dtype or device keeps PyTorch's own error."
    with pytest.raises(RuntimeError, match='mat1 and mat2 shapes'): toy_learner(nn.Linear(5, 4)).fit(1)

def test_missing_flatten(toy_learner, fit_error):
    model = nn.Sequential(nn.Linear(6, 4), nn.Unflatten(1, (4, 1, 1)))
    m, e = fit_error(toy_learner(model), ValueError)
    assert '(8, 4, 1, 1)' in m and '(8,)' in m and 'nn.Flatten()' in m and e.__cause__ is not None

def test_one_hot_targets(toy_learner, toy_dls, fit_error):
    y = torch.arange(40) % 4
    m, _ = fit_error(toy_learner(dls=toy_dls(y=F.one_hot(y, 4))), ValueError)
    assert 'torch.int64 tensor of shape (8, 4)' in m and 'argmax(1)' in m

def test_float_class_targets(toy_learner, toy_dls, fit_error):
    m, _ = fit_error(toy_learner(dls=toy_dls(y=(torch.arange(40) % 4).float())), ValueError)
    assert 'torch.float32 tensor of shape (8,)' in m and 'y.long()' in m

def test_batch_size_mismatch(toy_learner, fit_error):
    model = nn.Sequential(nn.Linear(6, 4), nn.Flatten(0), nn.Unflatten(0, (-1, 8)))  # (8, 4) -> (4, 8)
    m, _ = fit_error(toy_learner(model), ValueError)
    assert 'shape (4, 8)' in m and 'shape (8,)' in m and '4 rows' in m

def test_mse_broadcast(toy_learner, toy_dls, fit_error):
    x = torch.randn(40, 1); y = 2*x[:, 0]
    m, _ = fit_error(toy_learner(nn.Linear(1, 1), toy_dls(x=x, y=y), F.mse_loss), ValueError)
    assert 'mse_loss' in m and '(8, 1)' in m and '(8,)' in m and 'broadcast' in m and 'y[:, None]' in m

def test_loss_not_scalar(toy_learner, fit_error):
    m, _ = fit_error(toy_learner(loss_func=functools.partial(F.cross_entropy, reduction='none')), ValueError)
    assert 'cross_entropy' in m and 'shape (8,)' in m and "reduction='mean'" in m

def test_loss_not_scalar_custom_steps(toy_dls, fit_error):
    "Steps written in a Learner subclass get the scalar check too."
    class MyLearner(TrainLearner):
        def get_loss(self): self.loss = (self.preds - self.preds.mean()).pow(2).mean(1)
    m, _ = fit_error(MyLearner(nn.Linear(6, 4), toy_dls(), F.cross_entropy), ValueError)
    assert 'shape (8,)' in m

def test_batch_not_a_tuple(toy_learner, fit_error):
    x = torch.randn(40, 6)
    m, _ = fit_error(toy_learner(dls=DataLoaders(DataLoader(x, 8), DataLoader(x, 8))), TypeError)
    assert 'torch.float32 tensor of shape (8, 6)' in m and 'TrainCB' in m and 'batch[:1]' in m

def test_batch_a_dict(toy_learner, fit_error):
    ds = [{'x': torch.randn(6), 'y': 1} for _ in range(16)]
    m, _ = fit_error(toy_learner(dls=DataLoaders(DataLoader(ds, 8), DataLoader(ds, 8))), TypeError)
    assert "dict with keys ['x', 'y']" in m and 'as_tuple=True' in m

def test_batch_not_a_tuple_train_learner(fit_error):
    x = torch.randn(40, 6)
    m, _ = fit_error(TrainLearner(nn.Linear(6, 4), DataLoaders(DataLoader(x, 8), DataLoader(x, 8)), F.cross_entropy), TypeError)
    assert 'TrainLearner' in m and 'batch[0]' in m and 'shape (8, 6)' in m

def test_empty_training_loader(toy_learner, toy_dls, fit_error):
    m, _ = fit_error(toy_learner(dls=toy_dls(x=torch.randn(5, 6), y=torch.zeros(5, dtype=torch.long), bs=8, drop_last=True)), ValueError)
    assert 'training DataLoader is empty' in m and '5 items' in m and 'batch_size=8' in m and 'drop_last=False' in m

def test_empty_validation_loader(toy_learner, toy_dls, fit_error):
    empty = DataLoader(TensorDataset(torch.zeros(0, 6), torch.zeros(0, dtype=torch.long)), 8)
    m, _ = fit_error(toy_learner(dls=toy_dls(valid=empty)), ValueError)
    assert 'validation DataLoader is empty' in m and 'no items' in m and 'valid=False' in m

def test_empty_loader_without_len(toy_learner, fit_error):
    class NoLen:
        def __iter__(self): return iter([])
    m, _ = fit_error(toy_learner(dls=(NoLen(), NoLen())), ValueError)
    assert 'training DataLoader is empty' in m and 'NoLen' in m

def test_empty_list_of_batches_is_allowed(toy_learner):
    "A literal empty list means no batches on purpose (lesson 14 validates on [] to skip it): no error."
    x, y = torch.randn(8, 6), torch.randint(0, 4, (8,))
    toy_learner(dls=([(x, y)], [])).fit(1)

# ---------------------------------------------------------------- non-finite losses

def _exploding(toy_dls, **kw):
    x = torch.randn(400, 1); y = 3*x + 2
    return Learner(nn.Linear(1, 1), toy_dls(x=x, y=y, bs=16), F.mse_loss, lr=5., cbs=[TrainCB()], **kw)

def test_nan_loss_stops_training(fit_error, toy_dls):
    learn = _exploding(toy_dls)
    m, e = fit_error(learn, NonFiniteLossError, 5)
    assert isinstance(e, FloatingPointError)
    assert ('became inf' in m or 'became nan' in m) and 'lr=5' in m and 'checks=False' in m
    epoch, batch = map(int, re.search(r'at epoch (\d+), batch (\d+)', m).groups())
    assert 0 <= epoch < 5 and 0 <= batch < 25
    learn.checks = False; learn.fit(1)  # the Learner still works (with NaN weights, now that nothing stops it)

def test_nan_loss_first_bad_batch_exact(toy_learner, fit_error):
    "The report names exactly the first non-finite batch, even when it is read many batches later."
    bad_at = (1, 3)
    class Poison(Callback):
        order = 50
        def after_loss(self, learn):
            if learn.training and (learn.epoch, learn.iter) == bad_at: learn.loss = learn.loss * float('nan')
    learn = toy_learner(cbs=[TrainCB(), Poison()], lr=0.01)
    m, _ = fit_error(learn, NonFiniteLossError, 3)
    assert 'became nan at epoch 1, batch 3 ' in m and 'lr=0.01' in m

def test_nan_check_every(toy_learner, fit_error):
    "With every=2 the error comes within two batches of the bad one."
    seen = []
    class Poison(Callback):
        order = 50
        def after_loss(self, learn):
            if learn.training and learn.iter == 1: learn.loss = learn.loss / 0.
        def after_batch(self, learn): seen.append(learn.iter)
    learn = toy_learner(cbs=[TrainCB(), Poison(), NaNCheckCB(every=2)])
    m, _ = fit_error(learn, NonFiniteLossError)
    assert 'became inf at epoch 0, batch 1 ' in m and seen == [0, 1]

def test_checks_off(toy_learner, toy_dls):
    learn = _exploding(toy_dls, checks=False)
    learn.fit(5)  # no error: the check is off
    assert not torch.isfinite(learn.model.weight).all()
    # and nothing is checked at the first batch either: PyTorch's own error comes through
    with pytest.raises(RuntimeError, match='not on the expected device'): toy_learner(nn.Linear(6, 4, device='meta'), checks=False).fit(1)

# ---------------------------------------------------------------- the arguments of Learner and fit

def test_dls_one_dataloader(toy_learner, toy_dls, fit_error):
    m, e = fit_error(toy_learner(dls=toy_dls().train), TypeError)
    assert 'dls is one DataLoader' in m and 'DataLoaders(train_dl, valid_dl)' in m and 'valid=False' in m

def test_dls_without_validation_loader(toy_learner, toy_dls, fit_error):
    train = toy_dls().train
    m, _ = fit_error(toy_learner(dls=(train,)), ValueError)
    assert 'no validation loader' in m and 'dls[1]' in m and 'valid=False' in m
    toy_learner(dls=(train,)).fit(1, valid=False)  # which works

def test_dls_left_out(fit_error):
    "Learner(model) without data: the default dls=(0,) gives no batches"
    m, _ = fit_error(Learner(nn.Linear(6, 4), cbs=[TrainCB()]), TypeError)
    assert 'The training loader is 0 (int)' in m and 'DataLoaders(train_dl, valid_dl)' in m

@pytest.mark.parametrize('where', ['Learner', 'fit'])
def test_callback_class_not_instance(where, toy_learner, fit_error):
    learn = toy_learner(cbs=[TrainCB] if where == 'Learner' else None)
    m, _ = fit_error(learn, TypeError, cbs=[MetricsCB] if where == 'fit' else None)
    cls = 'TrainCB' if where == 'Learner' else 'MetricsCB'
    assert f'cbs holds the class {cls}, not a callback' in m and f'{cls}()' in m
    assert learn.opt is None and len(learn.cbs) == 1  # nothing ran, and fit's callbacks are not kept

def test_not_a_callback(toy_learner, fit_error):
    m, _ = fit_error(toy_learner(), TypeError, cbs=[print])
    assert 'cbs holds <built-in function print>' in m and 'Callback' in m

def test_steps_missing(toy_learner, fit_error):
    m, _ = fit_error(toy_learner(cbs=[]), TypeError)
    assert 'nothing supplies the step(s) predict, get_loss, backward, step, zero_grad' in m and 'TrainCB()' in m
    toy_learner(cbs=[]).fit(1, train=False, cbs=TrainCB())  # validation alone needs only predict and get_loss

@pytest.mark.parametrize('lr, exc, says', [(None, TypeError, "lr=None): the learning rate must be a number, such as lr=0.1, not a NoneType"),
                                           ('0.1', TypeError, "(without the quotes: lr=0.1)"),
                                           ('fast', TypeError, "lr='fast'): the learning rate must be a number, such as lr=0.1, not a str"),
                                           (-0.1, ValueError, 'lr=-0.1): the learning rate must be a finite number of 0 or more'),
                                           (float('nan'), ValueError, 'lr=nan)')])
def test_bad_lr(lr, exc, says, toy_learner, fit_error):
    m, _ = fit_error(toy_learner(lr=lr), exc)
    assert m.startswith('Learner(..., lr=') and says in m, m
    if lr is not None:  # fit(lr=None) means the Learner's
        m, _ = fit_error(toy_learner(), exc, lr=lr)
        assert m.startswith('fit(..., lr=') and says in m, m

@pytest.mark.parametrize('f, says', [('adam', 'opt_func=optim.Adam, torch'), ('sgd', 'opt_func=optim.SGD, torch'),
                                     (optim.SGD(nn.Linear(1, 1).parameters(), 0.1), 'opt_func=optim.SGD: the Learner builds the optimizer itself')])
def test_bad_opt_func(f, says, toy_learner, fit_error):
    m, _ = fit_error(toy_learner(opt_func=f), TypeError)
    assert says in m and 'not a function that builds an optimizer' in m, m

def test_model_a_function(toy_learner, fit_error):
    w = torch.randn(6, 4, requires_grad=True)
    def model(x): return x @ w
    m, _ = fit_error(toy_learner(model), TypeError)
    assert 'model is the function model, not an nn.Module' in m and 'nn.Sequential' in m

@pytest.mark.parametrize('n', [2.5, -1, 0, '3', True])
def test_bad_n_epochs(n, toy_learner, fit_error):
    learn = toy_learner()
    w = learn.model.weight.detach().clone()
    m, _ = fit_error(learn, ValueError, n)
    assert m == f'fit: n_epochs must be a positive int, got n_epochs={n!r}'
    assert torch.equal(w, learn.model.weight) and learn.opt is None  # checked before anything ran
def test_targets_out_of_range(toy_learner, toy_dls, fit_error):
    m, e = fit_error(toy_learner(nn.Linear(6, 2), toy_dls(y=torch.arange(40) % 7)), ValueError)
    assert 'The targets go up to 6 but the model gives 2 scores per item' in m and '7 outputs' in m and e.__cause__ is not None

def test_targets_negative(toy_learner, toy_dls, fit_error):
    m, _ = fit_error(toy_learner(dls=toy_dls(y=torch.arange(40) % 4 - 1)), ValueError)
    assert 'The targets go down to -1, but class indices run from 0 to 3' in m

@pytest.mark.slow  # a fresh Python process
def test_checks_on_with_the_learner_alone():
    "`from miniai.learner import Learner`, and nothing else of miniai, gives a Learner whose fit runs the checks"
    code = """if True:
        import torch
        from torch import nn
        from miniai.learner import Learner, TrainCB
        x, y = torch.randn(8, 6, dtype=torch.float64), torch.zeros(8, dtype=torch.long)
        try: Learner(nn.Linear(6, 4), ([(x, y)], [(x, y)]), torch.nn.functional.cross_entropy, cbs=[TrainCB()]).fit(1)
        except TypeError as e: print(e)"""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get('PYTHONPATH', '')]))
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "The model's parameters are torch.float32 but its input is a torch.float64 tensor" in r.stdout
