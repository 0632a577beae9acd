"""The from-scratch pieces that miniai exports, run beside PyTorch's own version of the same thing.

The lessons build these by hand and compare them with PyTorch once, in the notebook. The tests here keep each
comparison in the fast tier, on small random tensors (no data set is read): the optimizers of lesson 11 against
`torch.optim` over several steps, the schedules against `torch.optim.lr_scheduler`, `RunningBatchNorm` against
`F.batch_norm` in training and evaluation, `GeneralRelu` against PyTorch's activations, the AWD-LSTM's
dropouts and encoder against `nn.LSTM` and `nn.Embedding`, label smoothing and MixUp against
`F.cross_entropy`, the batch warp against `F.affine_grid`, `TensorLoader` against `DataLoader`, `pad_collate`
against `pad_sequence`.

Not here: the exhibits a lesson builds on the way and does not export. The matmul ladder (lesson 01), the
backward passes (02), softmax, log-softmax and cross-entropy, the samplers and the collate function (03),
convolution through `unfold` (06), BatchNorm, LayerNorm, InstanceNorm and GroupNorm written out (10), the
optimizer assembled from statistics and steppers and LAMB (11), and the LSTM cell (17) are checked against
PyTorch where they are built, in their notebooks, which tests/test_notebooks.py runs (the slow tier).
"""
import math
from functools import partial
import pytest
import torch
from torch import nn, optim
import torch.nn.functional as F
from torch.optim import lr_scheduler
from torch.testing import assert_close

from miniai.sgd import SGD, Momentum, RMSProp, Adam, BatchSchedCB, RecorderCB
from miniai.sched import sched_lin, sched_cos, sched_exp, sched_no, combine_scheds, one_cycle, torch_pct, ParamSchedCB
from miniai.init import GeneralRelu, RunningBatchNorm
from miniai.learner import TrainLearner, MomentumLearner
from miniai.augment import LabelSmoothingCrossEntropy, MixUp
from miniai.warps import batch_warp
from miniai.datasets import TensorLoader
from miniai.text import pad_collate
from miniai.ulmfit import AWD_LSTM, EmbeddingDropout, RNNDropout, WeightDropout, TokenAccuracy

# ---------------------------------------------------------------- optimizers (lesson 11)
# Both optimizers get the same starting weights and the same gradients at every step, in double precision;
# the gradients span six orders of magnitude, so that `eps` and the bias corrections matter.

def _grads(n_steps=6, shapes=((4, 3), (3,), (2, 2, 2)), seed=0):
    g = torch.Generator().manual_seed(seed)
    start = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    grads = [[torch.randn(s, generator=g, dtype=torch.float64) * 10.**-torch.randint(0, 6, s, generator=g)
              for s in shapes] for _ in range(n_steps)]
    return start, grads

def _trajectory(make_opt, seed=0):
    "The weights after each step of the optimizer `make_opt(params)`, fed `_grads(seed)`"
    start, grads = _grads(seed=seed)
    ps = [p.clone().requires_grad_() for p in start]
    opt, out = make_opt(ps), []
    for gs in grads:
        for p, g in zip(ps, gs): p.grad = g.clone()
        opt.step()
        out.append(torch.cat([p.detach().flatten() for p in ps]))
    return torch.stack(out)

def _same(ours, theirs):
    for seed in (0, 1):
        assert_close(_trajectory(ours, seed), _trajectory(theirs, seed), rtol=0, atol=1e-12)

def two_groups(cls, **kw):
    "`cls` with the first tensor in a param group of its own at a tenth of the learning rate"
    return lambda ps: cls([dict(params=ps[:1], lr=kw['lr']/10), dict(params=ps[1:])], **kw)

OPTIMIZERS = {  # ours, PyTorch's with the same settings
    'sgd': (partial(SGD, lr=0.1), partial(optim.SGD, lr=0.1)),
    'sgd l2': (partial(SGD, lr=0.1, l2=0.3), partial(optim.SGD, lr=0.1, weight_decay=0.3)),
    'sgd wd': (partial(SGD, lr=0.1, wd=0.3), partial(optim.SGD, lr=0.1, weight_decay=0.3)),  # the same thing for plain SGD
    'momentum': (partial(Momentum, lr=0.1, momentum=0.8, l2=0.3), partial(optim.SGD, lr=0.1, momentum=0.8, weight_decay=0.3)),
    'momentum groups': (two_groups(Momentum, lr=0.1), two_groups(optim.SGD, lr=0.1, momentum=0.9)),
    'rmsprop': (partial(RMSProp, lr=0.01, sqr_mom=0.9, eps=1e-6, l2=0.1),
                partial(optim.RMSprop, lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1)),
    'adam': (partial(Adam, lr=0.01, betas=(0.8, 0.9), l2=0.1), partial(optim.Adam, lr=0.01, betas=(0.8, 0.9), weight_decay=0.1)),
    'adamw': (partial(Adam, lr=0.01, wd=0.1, eps=1e-6), partial(optim.AdamW, lr=0.01, weight_decay=0.1, eps=1e-6)),
    'adamw groups': (two_groups(Adam, lr=0.01, wd=0.1), two_groups(optim.AdamW, lr=0.01, weight_decay=0.1)),
}

@pytest.mark.parametrize('name', OPTIMIZERS)
def test_optimizer_matches_torch(name):
    _same(*OPTIMIZERS[name])

@pytest.mark.parametrize('ours, theirs', [
    (partial(SGD, lr=0.1001), partial(optim.SGD, lr=0.1)),
    (partial(Adam, lr=0.01, betas=(0.8, 0.9001)), partial(optim.Adam, lr=0.01, betas=(0.8, 0.9))),
    (partial(Adam, lr=0.01, l2=0.1), partial(optim.AdamW, lr=0.01, weight_decay=0.1))])  # L2 is not decoupled decay
def test_optimizer_comparison_sees_a_small_difference(ours, theirs):
    with pytest.raises(AssertionError): _same(ours, theirs)

def test_momentum_learner_is_sgd_with_momentum():
    "MomentumLearner keeps mom times the old gradients: with plain SGD, that is torch's SGD(momentum=mom)"
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 5, generator=g); y = x @ torch.randn(5, 1, generator=g)
    dls = ([(x[i:i+8], y[i:i+8]) for i in range(0, 48, 8)], [])
    def fitted(cls, **kw):
        torch.manual_seed(0)
        learn = cls(nn.Linear(5, 1), dls, F.mse_loss, lr=0.05, **kw)
        learn.fit(2)
        return torch.cat([p.detach().flatten() for p in learn.model.parameters()])
    ours = fitted(MomentumLearner, mom=0.85)
    assert_close(ours, fitted(TrainLearner, opt_func=partial(optim.SGD, momentum=0.85)), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(ours, fitted(TrainLearner), atol=1e-3)  # and momentum changed the result

# ---------------------------------------------------------------- schedules (lesson 11b)

def _torch_lrs(make_sched, n, lr=1.):
    "The learning rate and momentum at each of `n` steps of the scheduler `make_sched(opt)`"
    opt = optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr, momentum=0.9)
    sched, lrs, moms = make_sched(opt), [], []
    for _ in range(n):
        lrs.append(opt.param_groups[0]['lr']); moms.append(opt.param_groups[0]['momentum'])
        opt.step(); sched.step()
    return lrs, moms

def _ours(f, n, last=None): return [f(i/(last or n)) for i in range(n)]

@pytest.mark.parametrize('ours, theirs', [
    (sched_lin(0.4, 2.), lambda o: lr_scheduler.LinearLR(o, start_factor=0.2, end_factor=1., total_iters=40)),
    (sched_cos(2., 0.05), lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=40, eta_min=0.05)),
    (sched_exp(2., 2*0.9**40), lambda o: lr_scheduler.ExponentialLR(o, gamma=0.9)),
    (sched_no(2., 0.), lambda o: lr_scheduler.ConstantLR(o, factor=1., total_iters=40))], ids=['lin', 'cos', 'exp', 'no'])
def test_annealer_matches_torch(ours, theirs):
    assert_close(_ours(ours, 40), _torch_lrs(theirs, 40, lr=2.)[0], rtol=1e-9, atol=0)

@pytest.mark.parametrize('total, pct, div, fdiv', [(100, 0.3, 25., 1e4), (37, 0.25, 10., 100.), (500, 0.5, 5., 1e3)])
def test_one_cycle_matches_onecyclelr(total, pct, div, fdiv):
    "one_cycle at the position torch_pct gives, and the momentum as two cosines, step by step as OneCycleLR"
    lrs, moms = _torch_lrs(lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.02, total_steps=total, pct_start=pct,
                                                             div_factor=div, final_div_factor=fdiv), total)
    p = torch_pct(pct, total)
    assert_close(_ours(one_cycle(0.02, p, div, fdiv), total, last=total-1), lrs, rtol=1e-9, atol=1e-15)
    mom = combine_scheds([p, 1-p], [sched_cos(0.95, 0.85), sched_cos(0.85, 0.95)])
    assert_close(_ours(mom, total, last=total-1), moms, rtol=1e-9, atol=0)
    with pytest.raises(AssertionError):  # a peak one step off is seen
        assert_close(_ours(one_cycle(0.02, torch_pct(pct, total + 1), div, fdiv), total, last=total-1), lrs, rtol=1e-9, atol=0)

def test_param_sched_cb_steps_as_onecyclelr_in_a_fit():
    "In a fit, ParamSchedCB(one_cycle) sets the rate OneCycleLR would, batch by batch, and the weights end the same"
    g = torch.Generator().manual_seed(0)
    x = torch.randn(80, 3, generator=g); y = x @ torch.randn(3, 1, generator=g)
    dls = ([(x[i:i+8], y[i:i+8]) for i in range(0, 80, 8)], [])  # 10 batches, 3 epochs: 30 steps
    def fit(sched_cb):
        torch.manual_seed(0)
        rec = RecorderCB(lr=lambda cb: cb.pg['lr'], mom=lambda cb: cb.pg['momentum'])
        learn = TrainLearner(nn.Linear(3, 1), dls, F.mse_loss, lr=0.1, opt_func=partial(optim.SGD, momentum=0.9), cbs=[sched_cb, rec])
        learn.fit(3)
        return rec.recs, learn.model.weight.detach()
    theirs, w_theirs = fit(BatchSchedCB(partial(lr_scheduler.OneCycleLR, max_lr=0.1, total_steps=30)))
    p = torch_pct(0.3, 30)
    ours, w_ours = fit(ParamSchedCB(lr=one_cycle(0.1, p), momentum=combine_scheds([p, 1-p], [sched_cos(0.95, 0.85), sched_cos(0.85, 0.95)])))
    assert len(ours['lr']) == len(theirs['lr']) == 30
    assert_close(ours['lr'], theirs['lr'], rtol=1e-9, atol=1e-15)
    assert_close(ours['mom'], theirs['mom'], rtol=1e-9, atol=0)
    assert_close(w_ours, w_theirs, rtol=1e-5, atol=1e-6)

# ---------------------------------------------------------------- activations and norms (lessons 10, 12)

def test_general_relu_matches_torch():
    x = torch.randn(200, dtype=torch.float64) * 4
    assert torch.equal(GeneralRelu()(x), F.relu(x))
    assert_close(GeneralRelu(leak=0.1, sub=0.4, maxv=6.)(x), (F.leaky_relu(x, 0.1) - 0.4).clamp(max=6.))
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    GeneralRelu(leak=0.1, sub=0.4)(xa).sum().backward(); (F.leaky_relu(xb, 0.1) - 0.4).sum().backward()
    assert_close(xa.grad, xb.grad)

def _rbn_with_weights(mom=0.1, eps=1e-5):
    torch.manual_seed(0)
    rbn = RunningBatchNorm(3, mom, eps)
    with torch.no_grad(): rbn.mults.copy_(torch.randn(3, 1, 1)); rbn.adds.copy_(torch.randn(3, 1, 1))
    return rbn, rbn.mults.detach().flatten(), rbn.adds.detach().flatten()

def test_running_batch_norm_first_batch_is_batch_norm():
    "On its first training batch the running averages are that batch's statistics: F.batch_norm's output and gradients"
    rbn, w, b = _rbn_with_weights()
    x = (torch.randn(24, 3, 5, 5) * 2 + 1).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    ours, theirs = rbn(x), F.batch_norm(x2, None, None, w, b, training=True, eps=1e-5)
    assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    ours.pow(2).sum().backward(); theirs.pow(2).sum().backward()
    assert_close(x.grad, x2.grad, rtol=1e-3, atol=1e-4)

def test_running_batch_norm_without_averaging_is_batch_norm():
    "With mom=1 the running averages hold the last batch alone: batch norm in training, its statistics in evaluation"
    rbn, w, b = _rbn_with_weights(mom=1.)
    g = torch.Generator().manual_seed(1)
    batches = [torch.randn(24, 3, 4, 4, generator=g) * s + m for s, m in [(1., 0.), (3., 2.), (0.5, -1.)]]
    for x in batches:
        assert_close(rbn(x), F.batch_norm(x, None, None, w, b, training=True, eps=1e-5), rtol=1e-4, atol=1e-4)
    last = batches[-1]
    mean, var = last.mean((0, 2, 3)), last.var((0, 2, 3), correction=0)
    rbn.eval()
    for x in batches:
        assert_close(rbn(x), F.batch_norm(x, mean, var, w, b, training=False, eps=1e-5), rtol=1e-4, atol=1e-4)

def test_running_batch_norm_eval_uses_weighted_statistics():
    "After training batches, evaluation is F.batch_norm with the batches' statistics weighted mom*(1-mom)**age"
    mom = 0.3
    rbn, w, b = _rbn_with_weights(mom=mom)
    g = torch.Generator().manual_seed(2)
    batches = [torch.randn(24, 3, 4, 4, generator=g) * s + m for s, m in [(1., 0.), (3., 2.), (0.5, -1.), (2., 1.)]]
    with torch.no_grad():
        for x in batches: rbn(x)
    ages = range(len(batches) - 1, -1, -1)
    wts = [mom * (1 - mom)**a for a in ages]
    n = sum(wt * x.numel() / 3 for wt, x in zip(wts, batches))
    mean = sum(wt * x.sum((0, 2, 3)) for wt, x in zip(wts, batches)) / n
    var = sum(wt * (x*x).sum((0, 2, 3)) for wt, x in zip(wts, batches)) / n - mean**2
    rbn.eval()
    x = torch.randn(8, 3, 4, 4, generator=g)
    assert_close(rbn(x), F.batch_norm(x, mean, var, w, b, training=False, eps=1e-5), rtol=1e-4, atol=1e-4)

# ---------------------------------------------------------------- losses and MixUp (lesson 13)

@pytest.mark.parametrize('reduction', ['mean', 'sum', 'none'])
@pytest.mark.parametrize('eps', [0., 0.1, 0.3])
def test_label_smoothing_matches_cross_entropy(eps, reduction):
    out = torch.randn(32, 10, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 10, (32,))
    ours = LabelSmoothingCrossEntropy(eps, reduction)(out, y)
    theirs = F.cross_entropy(out, y, label_smoothing=eps, reduction=reduction)
    assert_close(ours, theirs)
    g1, = torch.autograd.grad(ours.sum(), out); g2, = torch.autograd.grad(theirs.sum(), out)
    assert_close(g1, g2)

def test_mixup_loss_is_cross_entropy_with_mixed_targets():
    "MixUp's blend of two losses is the cross-entropy against the same blend of the two one-hot targets"
    torch.manual_seed(0)
    x, y = torch.randn(16, 6), torch.randint(0, 5, (16,))
    mix = MixUp(alpha=0.4)
    class Learn: pass
    learn = Learn(); learn.loss_func, learn.training, learn.batch = F.cross_entropy, True, (x, y)
    mix.before_fit(learn); mix.before_batch(learn)
    xm, ym = learn.batch
    lam = mix.lam[:, None]
    assert torch.equal(ym, y) and 0.5 <= lam.min() and lam.max() <= 1
    assert_close(xm, lam*x + (1 - lam)*x[mix.perm])
    preds = torch.randn(16, 5)
    soft = lam*F.one_hot(y, 5) + (1 - lam)*F.one_hot(y[mix.perm], 5)
    assert_close(learn.loss_func(preds, ym), F.cross_entropy(preds, soft))
    mix.cleanup_fit(learn)
    assert learn.loss_func is F.cross_entropy

# ---------------------------------------------------------------- the batch warp (lesson 15)

def test_batch_warp_of_affine_corners_is_affine_grid():
    "Corners that an affine map moves: the homography is that map, and the warp is F.affine_grid + F.grid_sample"
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 9, 7, generator=g)
    theta = torch.tensor([[[0.8, 0.1, 0.05], [-0.2, 0.9, 0.1]], [[-1., 0., 0.], [0., 1., 0.]], [[0.5, 0., -0.3], [0., 0.6, 0.2]]])
    corners = torch.tensor([(-1., -1.), (-1., 1.), (1., 1.), (1., -1.)])  # the output's corners, as batch_warp orders them
    src = torch.cat([corners, torch.ones(4, 1)], 1) @ theta.transpose(1, 2)  # (3, 4, 2): where each corner reads from
    theirs = F.grid_sample(x, F.affine_grid(theta, x.shape, align_corners=False), align_corners=False)
    assert_close(batch_warp(x, corners=src), theirs, rtol=1e-4, atol=1e-5)

# ---------------------------------------------------------------- loading and collating (lessons 04, 16)

@pytest.mark.parametrize('n, bs, drop_last', [(50, 8, False), (50, 8, True), (7, 10, False), (64, 16, True)])
def test_tensorloader_matches_dataloader(n, bs, drop_last):
    "The batches of a DataLoader over a TensorDataset: in order, and shuffled, from a RandomSampler with the same generator"
    x, y = torch.randn(n, 3), torch.arange(n)
    ds = torch.utils.data.TensorDataset(x, y)
    for shuffle in (False, True):
        ours = TensorLoader(x, y, batch_size=bs, shuffle=shuffle, drop_last=drop_last, generator=torch.Generator().manual_seed(5))
        sampler = torch.utils.data.RandomSampler(ds, generator=torch.Generator().manual_seed(5)) if shuffle else None
        theirs = torch.utils.data.DataLoader(ds, batch_size=bs, sampler=sampler, drop_last=drop_last)
        a, b = list(ours), list(theirs)
        assert len(ours) == len(theirs) == len(a) == len(b)
        for (xa, ya), (xb, yb) in zip(a, b): assert torch.equal(xa, xb) and torch.equal(ya, yb)

@pytest.mark.parametrize('pad_first', [False, True])
def test_pad_collate_matches_pad_sequence(pad_first):
    g = torch.Generator().manual_seed(0)
    texts = [torch.randint(2, 50, (int(n),), generator=g).tolist() for n in torch.randint(1, 12, (6,), generator=g)]
    x, y = pad_collate([(t, i) for i, t in enumerate(texts)], pad_idx=1, pad_first=pad_first)
    theirs = nn.utils.rnn.pad_sequence([torch.tensor(t) for t in texts], batch_first=True, padding_value=1,
                                       padding_side='left' if pad_first else 'right')
    assert torch.equal(x, theirs) and y.tolist() == list(range(6))

# ---------------------------------------------------------------- the AWD-LSTM (lesson 17)

def test_weight_dropout_is_an_lstm_on_the_dropped_weights():
    "Training: the output and gradients of nn.LSTM run on the dropped copy of the weights; p=0: the plain LSTM's"
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 6, batch_first=True)
    plain = nn.LSTM(5, 6, batch_first=True); plain.load_state_dict(lstm.state_dict())
    wd = WeightDropout(lstm, 0.5)
    x = torch.randn(3, 7, 5)
    out = wd(x)[0]
    dropped = wd.module.weight_hh_l0.detach()
    assert (dropped == 0).any() and not (dropped == 0).all()
    with torch.no_grad(): plain.weight_hh_l0.copy_(dropped)
    assert_close(out, plain(x)[0])
    # the gradient reaches the raw weights through the mask: the LSTM's gradient, times the mask's 1/(1-p) or 0
    out.pow(2).sum().backward(); plain(x)[0].pow(2).sum().backward()
    kept = dropped != 0
    assert_close(wd.weight_hh_l0_raw.grad, torch.where(kept, plain.weight_hh_l0.grad * 2, 0.))
    assert_close(wd.module.weight_ih_l0.grad, plain.weight_ih_l0.grad)

def test_embedding_dropout_rows_and_gradient():
    "Training: nn.Embedding with whole rows zeroed and the rest scaled by 1/(1-p); p=0: nn.Embedding, gradient included"
    torch.manual_seed(0)
    emb = nn.Embedding(40, 6, padding_idx=1)
    words = torch.randint(0, 40, (4, 9)); words[0, :3] = 1
    out = EmbeddingDropout(emb, 0.5)(words)
    row_kept = (out != 0).any(-1)  # a word's row is dropped everywhere it appears, or kept everywhere
    mask = torch.zeros(40)
    mask[words[row_kept]] = 2.
    assert_close(out, nn.functional.embedding(words, emb.weight * mask[:, None], padding_idx=1))
    ref = nn.Embedding(40, 6, padding_idx=1); ref.load_state_dict(emb.state_dict())
    emb.zero_grad()
    EmbeddingDropout(emb, 0.)(words).pow(2).sum().backward(); ref(words).pow(2).sum().backward()
    assert_close(emb.weight.grad, ref.weight.grad)
    assert (emb.weight.grad[1] == 0).all()  # the padding row learns nothing, as in nn.Embedding

def test_rnn_dropout_scales_as_nn_dropout():
    "One mask per sequence and feature, as nn.Dropout1d draws one per channel; kept values scaled by 1/(1-p) as nn.Dropout"
    torch.manual_seed(0)
    x = torch.randn(16, 10, 8)
    ours = RNNDropout(0.3)(x)
    theirs = nn.Dropout1d(0.3)(x.transpose(1, 2)).transpose(1, 2)  # (batch, features, time): a channel is a feature
    for o in (ours, theirs):
        kept = (o != 0)
        assert torch.equal(kept, kept[:, :1].expand_as(kept))  # the same features at every time step
        assert_close(o[kept], x[kept] / 0.7)
    assert torch.equal(RNNDropout(0.3).eval()(x), nn.Dropout1d(0.3).eval()(x))

def test_awd_lstm_without_dropout_is_stacked_lstms():
    "All dropouts 0: the embedding then nn.LSTMs of sizes emb, n_hid, emb; two halves, state carried, give the whole"
    torch.manual_seed(0)
    enc = AWD_LSTM(30, emb_sz=6, n_hid=10, n_layers=3, hidden_p=0., input_p=0., embed_p=0., weight_p=0.)
    emb = nn.Embedding(30, 6, padding_idx=1); emb.load_state_dict(enc.emb.state_dict())
    lstms = [nn.LSTM(i, o, batch_first=True) for i, o in [(6, 10), (10, 10), (10, 6)]]
    for l, rnn in zip(lstms, enc.rnns):
        l.load_state_dict({k.removeprefix('module.').removesuffix('_raw'): v for k, v in rnn.state_dict().items()})
    x = torch.randint(0, 30, (4, 12))
    h = emb(x)
    for l in lstms: h = l(h)[0]
    enc.reset()
    halves = torch.cat([enc(x[:, :5])[1][-1], enc(x[:, 5:])[1][-1]], 1)
    assert_close(halves, h, rtol=1e-5, atol=1e-6)

def test_token_accuracy_matches_torcheval():
    import torcheval.metrics
    g = torch.Generator().manual_seed(0)
    ours, theirs = TokenAccuracy(), torcheval.metrics.MulticlassAccuracy()
    for bs, t in [(4, 7), (2, 7), (4, 3)]:
        scores, targs = torch.randn(bs, t, 11, generator=g), torch.randint(0, 11, (bs, t), generator=g)
        ours.update(scores, targs); theirs.update(scores.flatten(0, 1), targs.flatten())
    assert math.isclose(ours.value, theirs.compute().item(), abs_tol=1e-6)
