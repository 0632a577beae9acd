"""A fault in any event of a fit (an error, or Ctrl-C) leaves the Learner as it was, able to fit again."""
import pytest, torch
from torch import nn
import torch.nn.functional as F
from miniai.learner import Learner, TrainCB, DeviceCB, MetricsCB, ProgressCB, Accuracy, Callback
from miniai.activations import ActivationStats

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
def test_fault_in_any_event(ev, exc, order, capsys, toy_dls):
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))
    metrics, stats = MetricsCB(Accuracy()), ActivationStats(lambda m: isinstance(m, nn.Linear))
    keep = [TrainCB(), DeviceCB('cpu'), metrics, ProgressCB()]
    learn = Learner(model, toy_dls(), F.cross_entropy, lr=0.1, cbs=list(keep))
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
def test_fault_first_fit_before_callbacks_started(ev, tmp_path, toy_dls):
    "A failure before the other callbacks' before_fit ran: their cleanup_fit must still work (first fit ever)."
    cbs = [TrainCB(), MetricsCB(Accuracy()), ProgressCB(plot=True, fname=tmp_path/'loss.png')]
    learn = Learner(nn.Linear(6, 4), toy_dls(), F.cross_entropy, cbs=cbs)
    with pytest.raises(ValueError, match='boom'): learn.fit(1, cbs=_RaiseAt(ev, ValueError('boom'), order=-10))
    learn.fit(1)
