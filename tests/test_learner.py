"""The Learner of lesson 08, beyond what its notebook shows: where the steps of a batch come from, the optimizer kept
from fit to fit, `restoring` (lr_find and lesson 13 put the Learner back with it), and the clean-up after an error or
Ctrl-C that the checks of lesson 08b add.
"""
import copy, pickle
import pytest, torch
from torch import nn, optim
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from miniai.datasets import DataLoaders
from miniai.learner import (Callback, Learner, TrainCB, TrainLearner, MomentumLearner, MetricsCB, Accuracy, SingleBatchCB,
                            restoring)

def _dls(n=40, bs=8):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 6, generator=g), torch.randint(0, 4, (n,), generator=g)
    return DataLoaders(DataLoader(TensorDataset(x, y), bs), DataLoader(TensorDataset(x, y), bs))

def _net(): return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 4))

def _learner(model=None, cbs=None, **kw):
    return Learner(_net() if model is None else model, _dls(), F.cross_entropy, cbs=[TrainCB()] if cbs is None else cbs, **kw)

class _Log(Callback):
    def __init__(self, order=0, log=None): self.order, self.log = order, [] if log is None else log
    def before_batch(self, learn): self.log.append(('before_batch', self.order))
    def predict(self, learn): self.log.append(('predict', self.order))

# ---------------------------------------------------------------- the steps of a batch: __getattr__

def test_steps_come_from_callbacks_in_order():
    log = []
    learn = Learner(nn.Linear(6, 4), _dls(), F.cross_entropy, cbs=[_Log(5, log), TrainCB(), _Log(-5, log)])
    learn.fit(1, train=False, cbs=SingleBatchCB())
    assert log == [('before_batch', -5), ('before_batch', 5), ('predict', -5), ('predict', 5)]
    assert not hasattr(Learner, 'predict') and learn.predict.args == ('predict',)

def test_a_subclass_step_wins_and_other_names_fail_plainly():
    learn = TrainLearner(nn.Linear(6, 4), _dls(), F.cross_entropy)
    assert learn.predict.__func__ is TrainLearner.predict  # found on the class: __getattr__ is not asked
    with pytest.raises(AttributeError, match="'TrainLearner' object has no attribute 'predcit'"): learn.predcit
    assert getattr(learn, 'metrics', None) is None  # getattr with a default still works

def test_learner_copies_and_pickles():
    "__getattr__ must not get in the way of copy and pickle (they look up names on an object that has no __dict__ yet)"
    learn = _learner()
    learn.fit(1)
    for other in (copy.deepcopy(learn), pickle.loads(pickle.dumps(learn))):
        assert type(other) is Learner and other.predict.args == ('predict',) and len(other.cbs) == 1
        for p, q in zip(learn.model.parameters(), other.model.parameters()): assert torch.equal(p, q)

# ---------------------------------------------------------------- the optimizer kept between fits

def test_optimizer_kept_rebuilt_and_a_replaced_model_refused():
    learn = _learner(opt_func=optim.AdamW, lr=1e-2)
    learn.fit(1)
    opt = learn.opt
    learn.fit(1, lr=1e-3)
    assert learn.opt is opt and opt.param_groups[0]['lr'] == 1e-3 and len(opt.state) > 0  # Adam's averages carry on
    learn.model = _net()
    with pytest.raises(ValueError, match=r"parameters that are not the model's.*reset_opt=True.*learn.opt = None"): learn.fit(1)
    assert learn.opt is opt and len(learn.cbs) == 1  # refused before anything changed
    w = learn.model[0].weight.detach().clone()
    learn.fit(1, reset_opt=True)
    assert learn.opt is not opt and not torch.equal(w, learn.model[0].weight)  # the new model trains
    learn.model, learn.opt = _net(), None
    learn.fit(1)  # or: learn.opt = None

def test_a_frozen_subset_of_parameters_is_fine():
    "An optimizer over some of the model's parameters (frozen layers) holds no foreign ones: no complaint"
    model = _net()
    learn = Learner(model, _dls(), F.cross_entropy, cbs=[TrainCB()], opt_func=lambda ps, lr: optim.SGD(model[3].parameters(), lr))
    learn.fit(2)

# ---------------------------------------------------------------- restoring

class _Boom(Callback):
    def after_backward(self, learn): raise ValueError('boom')

@pytest.mark.parametrize('fails', [False, True])
def test_restoring_puts_everything_back(fails):
    learn = MomentumLearner(_net(), _dls(), F.cross_entropy, lr=0.1, mom=0.9)  # its gradients carry from batch to batch
    learn.fit(1)
    learn.model[1].eval()  # one module in another mode than the rest
    before = copy.deepcopy(learn.model.state_dict())
    grads = [p.grad.clone() for p in learn.model.parameters()]
    modes = [m.training for m in learn.model.modules()]
    opt = learn.opt
    try:
        with restoring(learn):
            learn.fit(2, cbs=[_Boom()] if fails else None, lr=0.5)
            learn.opt = optim.Adam(learn.model.parameters())
    except ValueError: assert fails
    after = learn.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BatchNorm's running statistics
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, learn.model.parameters()))
    assert [m.training for m in learn.model.modules()] == modes and learn.opt is opt and opt.param_groups[0]['lr'] == 0.1

def test_restoring_a_bare_model():
    model = _net()
    before = copy.deepcopy(model.state_dict())
    with restoring(model):
        model.train()
        model(torch.randn(16, 6)).sum().backward()  # BatchNorm's statistics move; gradients appear
        with torch.no_grad(): model[0].weight += 1
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())

def test_lr_find_puts_the_learner_back():
    learn = _learner(opt_func=optim.AdamW)
    learn.fit(1)
    before, opt = copy.deepcopy(learn.model.state_dict()), learn.opt
    state = copy.deepcopy(opt.state_dict())
    with pytest.warns(UserWarning, match='ran out'): learn.lr_find(max_epochs=3, plot=False)
    assert all(torch.equal(before[k], v) for k, v in learn.model.state_dict().items())
    assert learn.opt is opt and all(torch.equal(a['exp_avg'], b['exp_avg'])
                                    for a, b in zip(state['state'].values(), opt.state_dict()['state'].values()))
    assert len(learn.cbs) == 1

# ---------------------------------------------------------------- after an error or Ctrl-C (lesson 08b's ResetOnErrorCB)

class _Interrupt(Callback):
    def after_backward(self, learn): raise KeyboardInterrupt  # as Ctrl-C would, between backward and step

@pytest.mark.parametrize('checks', [True, False])
def test_interrupt_between_backward_and_step(checks):
    learn = _learner(checks=checks)
    learn.model.eval()
    with pytest.raises(KeyboardInterrupt): learn.fit(1, cbs=_Interrupt())
    assert len(learn.cbs) == 1  # fit's own callbacks go however it ends: that is the Learner's
    grads_left = any(p.grad is not None for p in learn.model.parameters())
    # the gradients and the mode are the checks' work: with them off, the half-done batch is left as it was
    assert (grads_left, learn.model.training) == ((False, False) if checks else (True, True))

def test_reset_on_error_ignores_an_exception_around_fit():
    "fit run while an outer exception is being handled, and ending normally: nothing to reset"
    learn = _learner()
    try: raise RuntimeError('outer')
    except RuntimeError:
        learn.model.train()
        learn.fit(1)  # ends in the validation pass: eval mode, no gradients
        assert learn.model.training is False  # not put back in training mode: the outer exception is not this fit's

def test_metrics_follow_the_learner_without_checks():
    "The Learner alone, checks off, with metrics: the lesson's core works without lesson 08b's callbacks"
    metrics = MetricsCB(Accuracy())
    learn = _learner(cbs=[TrainCB(), metrics], checks=False)
    learn.fit(2)
    assert [(r['epoch'], r['train']) for r in metrics.history] == [(0, 'train'), (0, 'eval'), (1, 'train'), (1, 'eval')]
