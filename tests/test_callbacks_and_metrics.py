"""How the Learner takes its callbacks and metrics: any iterable of callbacks, batches skipped on purpose, metrics
that are plain functions, targets after several inputs."""
import fastcore.all as fc
import pytest, torch
from torch import nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from miniai.datasets import DataLoaders
from miniai.learner import Learner, TrainCB, MetricsCB, Accuracy, Callback, CancelBatchException

def test_all_batches_cancelled_is_not_an_empty_loader(toy_learner):
    "A callback may skip every batch on purpose (CancelBatchException in before_batch): the loader is not empty"
    class SkipAll(Callback):
        def before_batch(self, learn): raise CancelBatchException()
    learn = toy_learner(cbs=[TrainCB(), SkipAll()])
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
def test_cbs_any_iterable(make, toy_dls):
    count, extra = _Count(), _Count()
    learn = Learner(nn.Linear(6, 4), toy_dls(), F.cross_entropy, cbs=make([TrainCB(), count]))
    learn.fit(1, cbs=make([extra]))
    assert count.n == extra.n == 10 and len(learn.cbs) == 2  # 5 training + 5 validation batches; `extra` gone after the fit

def test_cbs_plus_fastcore_L(toy_dls):
    "The course's habit: Learner(..., cbs=cbs + fc.L(xtra)) and learn.fit(1, cbs=[cp] + fc.L(cbs))"
    cbs, xtra, cp = [TrainCB()], [_Count()], _Count()
    learn = Learner(nn.Linear(6, 4), toy_dls(), F.cross_entropy, cbs=cbs + fc.L(xtra))
    learn.fit(1, cbs=[cp] + fc.L([_Count()]))
    assert xtra[0].n == cp.n == 10 and learn.cbs == cbs + xtra

def test_cbs_single_callback(toy_learner):
    count = _Count()
    toy_learner(cbs=TrainCB()).fit(1, cbs=count)
    assert count.n == 10

def test_metric_plain_function(toy_learner, toy_dls):
    "A function of (preds, targets) is a metric, averaged by batch size as Accuracy is (the 2019 lessons' way)"
    def frac_right(preds, targs): return (preds.argmax(1) == targs).float().mean()
    fn, acc = MetricsCB(frac_right), MetricsCB(acc=Accuracy())
    learn = toy_learner(dls=toy_dls(bs=16), cbs=[TrainCB(), fn, acc])  # 40 items: batches of 16, 16 and 8
    learn.fit(1, train=False)
    x, y = learn.dls.valid.dataset.tensors
    with torch.no_grad(): whole = (learn.model(x).argmax(1) == y).float().mean().item()
    assert fn.history[-1]['frac_right'] == pytest.approx(whole) == pytest.approx(acc.history[-1]['acc'])

@pytest.mark.parametrize('bad, says', [('accuracy', "acc='accuracy' is not a metric"), (Accuracy, 'pass an instance, Accuracy()')])
def test_metric_not_a_metric(bad, says):
    with pytest.raises(TypeError) as e: MetricsCB(acc=bad)
    assert says in str(e.value)
