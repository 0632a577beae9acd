"""`Learner.lr_find` (lesson 08): where it stops, what it suggests, what it warns about, and what it puts back."""
import math, warnings
import pytest, torch
import matplotlib
matplotlib.use('agg')
import matplotlib.pyplot as plt
from miniai.learner import Callback, TrainCB

def test_lr_find_short_data_warns_and_runs(toy_learner, toy_dls):
    "Data too short for the rate to reach 1: the finder runs the rates it can, plots them and warns once, saying what to change"
    learn = toy_learner(dls=toy_dls(bs=20))  # 2 batches
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

def test_lr_find_gamma(toy_learner):
    with pytest.raises(ValueError) as e: toy_learner().lr_find(gamma=1., plot=False)
    assert 'gamma=1.0' in str(e.value)

def test_lr_find_stops_when_the_loss_rises(toy_learner, toy_dls):
    torch.manual_seed(0)
    learn = toy_learner(dls=toy_dls(x=torch.randn(400, 6), y=torch.arange(400) % 4, bs=8))
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

def test_lr_find_fault_restores(toy_learner, toy_dls):
    "Ctrl-C during lr_find: the weights and the optimizer are put back, the finder is gone, and fit works."
    learn = toy_learner(dls=toy_dls(x=torch.randn(400, 6), y=torch.arange(400) % 4))
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
