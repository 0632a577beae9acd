"""The exercises of `miniai.exercises` judge right and wrong answers correctly.

- every reference solution passes its own check;
- for every exercise, typical wrong answers (written here as a student would, not taken from the module) fail,
  with the hint promised for them;
- a property test: on cases drawn from the exercises' own input generators with any seed, each solution
  agrees with its counterpart (PyTorch's, or lesson 16's) within the exercise's tolerances;
- the exercise notebooks run end to end with the reference solutions checked in place of the stubs
  (`MINIAI_EXERCISE_REFERENCE=1`, see nbs/18_exercises.ipynb).
"""
import json, math, os, re, subprocess, sys, time
from pathlib import Path
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch import nn
from miniai.exercises import EXERCISES, REFERENCE_ENV, run_check, check
from miniai.exercise_checks import _differs
from miniai.learner import Callback, CancelEpochException, CancelFitException

ROOT = Path(__file__).resolve().parent.parent
EXERCISE_NBS = sorted((ROOT/'nbs').glob('18[a-z]_exercises_*.ipynb'))  # the students' notebooks, not 18d-18h

# ---------------------------------------------------------------------------------------------
# Wrong answers: {exercise: [(wrong function, a piece of the hint it must get, or None when no hint is promised)]}

def _mm_rows(a, b):  # forgot the new axis on a[i]
    c = torch.zeros(a.shape[0], b.shape[1])
    for i in range(a.shape[0]): c[i] = (a[i] * b).sum(0)
    return c

def _mm_axis(a, b):  # summed over the wrong axis, results collected in a list
    return torch.stack([(a[i][:, None] * b).sum(1) for i in range(len(a))])

def _mm_loops_transposed(a, b):  # loops right, but b indexed transposed: works only when square
    return torch.stack([(a[i][:, None] * b.T).sum(0) for i in range(len(a))])

class _ESFirstWorse(Callback):  # stops at the first epoch that is worse, whatever the patience
    def __init__(self, patience=1): self.patience = patience
    def before_fit(self, learn): self.best = float('inf')
    def after_epoch(self, learn):
        if learn.training: return
        if learn.loss.item() >= self.best: raise CancelFitException()
        self.best = learn.loss.item()

class _ESPrevious(Callback):  # compares each epoch with the one before
    def __init__(self, patience=1): self.patience, self.last, self.bad = patience, None, 0
    def after_epoch(self, learn):
        if learn.training: return
        loss = learn.loss.item()
        self.bad = self.bad + 1 if self.last is not None and loss >= self.last else 0
        self.last = loss
        if self.bad >= self.patience: raise CancelFitException()

class _ESTrainLoss(Callback):  # watches the training loss
    def __init__(self, patience=1): self.patience, self.best, self.bad = patience, float('inf'), 0
    def after_epoch(self, learn):
        if not learn.training: return
        loss = learn.loss.item()
        if loss < self.best: self.best, self.bad = loss, 0
        else: self.bad += 1
        if self.bad >= self.patience: raise CancelFitException()

class _ESCancelEpoch(Callback):  # raises the wrong exception: the fit goes on
    def __init__(self, patience=1): self.patience, self.best, self.bad = patience, float('inf'), 0
    def after_epoch(self, learn):
        if learn.training: return
        loss = learn.loss.item()
        if loss < self.best: self.best, self.bad = loss, 0
        else: self.bad += 1
        if self.bad >= self.patience: raise CancelEpochException()

class _ESLessEqual(Callback):  # an equal loss counts as an improvement
    def __init__(self, patience=1): self.patience, self.best, self.bad = patience, float('inf'), 0
    def after_epoch(self, learn):
        if learn.training: return
        loss = learn.loss.item()
        if loss <= self.best: self.best, self.bad = loss, 0
        else: self.bad += 1
        if self.bad >= self.patience: raise CancelFitException()

def _hook_means_kept(model, x):  # never removes its hooks
    means = []
    for m in model: m.register_forward_hook(lambda mod, i, o: means.append(o.mean().item()))
    model(x)
    return means

def _hook_means_inputs(model, x):  # records the inputs' means
    means = []
    hs = [m.register_forward_hook(lambda mod, i, o: means.append(i[0].mean().item())) for m in model]
    model(x)
    for h in hs: h.remove()
    return means

def _hook_means_std(model, x):  # records the std, not the mean
    means = []
    hs = [m.register_forward_hook(lambda mod, i, o: means.append(o.std().item())) for m in model]
    model(x)
    for h in hs: h.remove()
    return means

def _bn_student(x, w, b, rm, rv, training, momentum=0.1, eps=1e-5, eval_uses_batch=False, biased_running=False,
                momentum_flipped=False):
    "A student's BatchNorm, with switches for three typical slips."
    if training or eval_uses_batch:
        mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False)
    else: mean, var = rm, rv
    if training:
        m = 1 - momentum if momentum_flipped else momentum
        n = x.numel() / x.shape[1]
        rm = rm * (1 - m) + mean * m
        rv = rv * (1 - m) + var * (1 if biased_running else n / (n - 1)) * m
    xn = (x - mean[None, :, None, None]) / (var[None, :, None, None] + eps).sqrt()
    return xn * w[None, :, None, None] + b[None, :, None, None], rm, rv

def _adam_student(p, g, m, v, step, lr, b1, b2, eps, correct=True, eps_in=False):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g ** 2
    mh, vh = (m / (1 - b1 ** step), v / (1 - b2 ** step)) if correct else (m, v)
    return p - lr * mh / (torch.sqrt(vh + eps) if eps_in else vh.sqrt() + eps), m, v

def _one_cycle_student(max_lr, total, pct=0.25, div=25., fdiv=1e4, linear_up=False, peak_at_pct=False, final=None):
    start, lrs = max_lr / div, []
    end = start / fdiv if final is None else final
    peak = pct * total - (0 if peak_at_pct else 1)
    for i in range(total):
        if i <= peak:
            f = i / peak
            lrs.append(start + (max_lr - start) * f if linear_up else start + (max_lr - start) * (1 - math.cos(math.pi * f)) / 2)
        else:
            f = (i - peak) / (total - 1 - peak)
            lrs.append(end + (max_lr - end) * (1 + math.cos(math.pi * f)) / 2)
    return lrs

def _lstm_student(x, h, c, w_ih, w_hh, b_ih, b_hh, gates='ifgo', tanh_out=True, g_sigmoid=False):
    z = x @ w_ih.t() + h @ w_hh.t() + b_ih + b_hh
    parts = dict(zip(gates, z.chunk(4, dim=1)))
    i, f, o = torch.sigmoid(parts['i']), torch.sigmoid(parts['f']), torch.sigmoid(parts['o'])
    g = torch.sigmoid(parts['g']) if g_sigmoid else torch.tanh(parts['g'])
    c2 = f * c + i * g
    return o * (torch.tanh(c2) if tanh_out else c2), c2

def _lm_student(stream, bs, bptt, i, cols=False, no_shift=False):
    L = (len(stream) - 1) // bs
    def rows(s): return s.reshape(L, bs).t() if cols else s.reshape(bs, L)
    data = rows(stream[:bs * L])
    tgt = data if no_shift else rows(stream[1:bs * L + 1])
    return data[:, i * bptt:(i + 1) * bptt], tgt[:, i * bptt:(i + 1) * bptt]

WRONG = {
    'matmul': [(_mm_rows, "a[i][:, None]"), (_mm_axis, 'wrong axis'), (lambda a, b: a * b, 'elementwise product'),
               (_mm_loops_transposed, None)],
    'bmm': [(lambda a, b: torch.einsum('bik,bkj->ij', a, b), 'batch letter'), (lambda a, b: torch.einsum('bij,bjk->bki', a, b), 'wrong order'),
            (lambda a, b: torch.einsum('bik,bjk->bij', a, b), "b's letters")],
    'row_dots': [(lambda a, b: torch.einsum('ij,kj->ik', a, b), 'every row of b'), (lambda a, b: torch.einsum('ij,ij->j', a, b), "'->j'"),
                 (lambda a, b: torch.einsum('ij,ij->ij', a, b), 'summed over'), (lambda a, b: (a @ b.T).sum(1), None)],
    'linear_grad': [(lambda x, w, b, g: (g @ w.t(), x.t() @ g, g.mean(dim=0)), 'SUM of out_grad'),
                    (lambda x, w, b, g: (g @ w.t(), g.t() @ x, g.sum(0)), "w's shape"),
                    (lambda x, w, b, g: (g @ w, x.t() @ g, g.sum(0)), "x's shape"),
                    (lambda x, w, b, g: (g @ w.t(), x.t() @ g, g.sum(1)), None)],
    'relu_grad': [(lambda x, g: g * x.clamp(min=0), 'not by relu(x)'), (lambda x, g: g * (x >= 0).float(), 'exactly 0'),
                  (lambda x, g: g.clone(), 'negative')],
    'mse_grad': [(lambda p, t: (p - t) / len(p.flatten()), 'factor 2'), (lambda p, t: 2 * (p - t), 'pred.numel()'),
                 (lambda p, t: 2 * (t - p) / p.numel(), 'sign'), (lambda p, t: 2 * (p - t) / p.shape[-1], None)],
    'logsumexp': [(lambda x: torch.log(torch.exp(x).sum(dim=1)), 'subtract each row'),
                  (lambda x: torch.log(torch.exp(x - x.max(1, keepdim=True).values).sum(1)), 'add m back'),
                  (lambda x: x.logsumexp(1, keepdim=True), 'shape (n,)'),
                  (lambda x: x.max() + (x - x.max()).exp().sum(-1).log(), None)],
    'log_softmax': [(lambda x: torch.log(torch.exp(x) / torch.exp(x).sum(1, keepdim=True)), 'overflow'),
                    (lambda x: x - x.exp().sum(0, keepdim=True).log(), 'batch dimension'),
                    (lambda x: x - torch.logsumexp(x, 0), 'batch dimension'),
                    (lambda x: x.softmax(1), 'that is softmax')],
    'cross_entropy': [(lambda x, t: -F.log_softmax(x, 1).gather(1, t[:, None]).sum(), 'MEAN'),
                      (lambda x, t: F.log_softmax(x, 1).gather(1, t[:, None]).mean(), 'MINUS'),
                      (lambda x, t: -F.log_softmax(x, 1)[:, t].mean(), 'range(n)'),
                      (lambda x, t: -torch.log(x.exp() / x.exp().sum(1, keepdim=True))[range(len(t)), t].mean(), 'overflow'),
                      (lambda x, t: -x.softmax(1)[range(len(t)), t].mean(), 'take the log')],
    'accuracy': [(lambda x, t: (x.argmax(dim=0) == t).float().mean(), 'argmax(dim=1)'),
                 (lambda x, t: (x.argmax(1) == t).sum(), 'fraction'),
                 (lambda x, t: (x.argmin(1) == t).float().mean(), None)],
    'batch_indices': [(lambda idxs, bs, dl: [idxs[i:i + bs] for i in range(0, len(idxs) - bs + 1, bs)], 'keep the last'),
                      (lambda idxs, bs, dl: [idxs[i:i + bs] for i in range(0, len(idxs), bs)], 'drop_last=True'),
                      (lambda idxs, bs, dl: [list(range(i, min(i + bs, len(idxs)))) for i in range(0, len(idxs), bs)
                                             if not dl or i + bs <= len(idxs)], 'positions')],
    'collate': [(lambda items: (torch.cat([x for x, _ in items]), torch.tensor([y for _, y in items])), 'torch.stack'),
                (lambda items: (torch.stack([x for x, _ in items]), [y for _, y in items]), 'tensor too'),
                (lambda items: [torch.stack([x, torch.full_like(x, y)]) for x, y in items], None)],
    'weighted_mean': [(lambda vs, ns: sum(vs) / len(vs), 'weight each batch'),
                      (lambda vs, ns: sum(v * n for v, n in zip(vs, ns)) / len(vs), 'sum(sizes)'),
                      (lambda vs, ns: sum(v * n for v, n in zip(vs, ns)), None)],
    'conv_out_size': [(lambda n, ks, s, p: (n + p - ks) // s + 1, 'EACH side'), (lambda n, ks, s, p: -(-(n + 2 * p - ks) // s) + 1, 'round down'),
                      (lambda n, ks, s, p: (n + 2 * p - ks) // s, 'first position'), (lambda n, ks, s, p: (n + 2 * p - ks) / s + 1, 'whole number')],
    'conv2d': [(lambda x, w: F.conv2d(x, torch.flip(w, [2, 3])), 'flip'),
               (lambda x, w: (w.reshape(w.shape[0], -1) @ F.unfold(x, w.shape[-1])).reshape(
                   x.shape[0], w.shape[0], x.shape[3] - w.shape[3] + 1, x.shape[2] - w.shape[2] + 1), 'height first'),
               (lambda x, w: (w[:, :1].reshape(w.shape[0], -1) @ F.unfold(x[:, :1], w.shape[-1])).reshape(
                   x.shape[0], w.shape[0], x.shape[2] - w.shape[2] + 1, -1), None)],
    'upsample': [(lambda x, s: x.repeat(1, 1, s, s), 'repeat tiles'), (lambda x, s: x.repeat_interleave(s, dim=2), 'both the height'),
                 (lambda x, s: x.repeat_interleave(s, dim=-1), 'both the height')],
    'EarlyStoppingCB': [(_ESFirstWorse, 'not one'), (_ESPrevious, 'BEST'), (_ESTrainLoss, 'validation pass only'),
                        (_ESLessEqual, 'equal to the best'), (_ESCancelEpoch, None)],
    'clip_grad_norm': [(lambda gs, m: [g * min(1, m / g.norm().item()) if g.norm() > 0 else g for g in gs], 'ALL the gradients'),
                       (lambda gs, m: [g * (m / torch.sqrt(sum((o ** 2).sum() for o in gs))) for g in gs], 'only scale DOWN'),
                       (lambda gs, m: [torch.clamp(g, -m, m) for g in gs], 'clips each value')],
    'record_means': [(_hook_means_kept, 'remove each hook'), (_hook_means_inputs, 'OUTPUT'), (_hook_means_std, None)],
    'kaiming_std': [(lambda s, leak=0.: 1 / math.sqrt(math.prod(s[1:])), 'halves the variance'),
                    (lambda s, leak=0.: 2 / math.prod(s[1:]) / (1 + leak ** 2), 'square root'),
                    (lambda s, leak=0.: math.sqrt(2 / (1 + leak ** 2) / (s[0] * math.prod(s[2:]))), 'fan_out'),
                    (lambda s, leak=0.: math.sqrt(2 / (1 + leak ** 2) / s[1]), 'includes the kernel'),
                    (lambda s, leak=0.: math.sqrt(2 / math.prod(s[1:])), 'leaky ReLU')],
    'batchnorm': [(lambda *a, **k: _bn_student(*a, **k, eval_uses_batch=True), 'running statistics'),
                  (lambda *a, **k: _bn_student(*a, **k, biased_running=True), 'UNBIASED'),
                  (lambda *a, **k: _bn_student(*a, **k, momentum_flipped=True), 'weight of the NEW'),
                  (lambda x, w, b, rm, rv, tr, momentum=0.1, eps=1e-5: F.batch_norm(x, rm.clone(), rv.clone(), w, b, True, momentum, eps), None)],
    'layer_norm': [(lambda x, w, b, eps=1e-5: (x - x.mean(0)) / (x.var(0, unbiased=False) + eps).sqrt() * w + b, 'not over the batch'),
                   (lambda x, w, b, eps=1e-5: (x - x.mean(-1, keepdim=True)) / (x.var(-1, keepdim=True) + eps).sqrt() * w + b, 'biased'),
                   (lambda x, w, b, eps=1e-5: (x - x.mean(-1, keepdim=True)) / ((x ** 2).mean(-1, keepdim=True) - x.mean(-1, keepdim=True) ** 2 + eps).sqrt() * w + b, 'precision')],
    'momentum_step': [(lambda p, g, buf, lr, mom: (p - lr * (mom * buf + (1 - mom) * g), mom * buf + (1 - mom) * g), 'whole gradient'),
                      (lambda p, g, buf, lr, mom: (p - lr * g, mom * buf + g), 'momentum buffer'),
                      (lambda p, g, buf, lr, mom: (p + lr * (mom * buf + g), mom * buf + g), 'AGAINST')],
    'rmsprop_step': [(lambda p, g, s, lr, a, eps: (p - lr * g / torch.sqrt(a * s + (1 - a) * g ** 2 + eps), a * s + (1 - a) * g ** 2), 'after the square root'),
                     (lambda p, g, s, lr, a, eps: (p - lr * g / (a * s + (1 - a) * g ** 2 + eps), a * s + (1 - a) * g ** 2), 'SQUARE ROOT'),
                     (lambda p, g, s, lr, a, eps: (p - lr * g / (((1 - a) * s + a * g ** 2).sqrt() + eps), (1 - a) * s + a * g ** 2), 'alpha weighs')],
    'adam_step': [(lambda *a: _adam_student(*a, correct=False), 'bias correction'), (lambda *a: _adam_student(*a, eps_in=True), 'after the square root'),
                  (lambda p, g, m, v, step, lr, b1, b2, eps: _adam_student(p, g, m, v, step + 1, lr, b1, b2, eps), None)],
    'cos_sched': [(lambda s, e, pos: s + (e - s) * pos, 'straight line'), (lambda s, e, pos: s + (e - s) * (1 + math.cos(math.pi * pos)) / 2, 'at pos=0'),
                  (lambda s, e, pos: e + (s - e) * math.cos(pos * math.pi / 2), 'half a period')],
    'one_cycle': [(lambda *a: _one_cycle_student(*a, linear_up=True), 'cosine too'), (lambda *a: _one_cycle_student(*a, peak_at_pct=True), 'pct_start * total_steps - 1'),
                  (lambda mx, n, pct=0.25, div=25., fdiv=1e4: _one_cycle_student(mx, n, pct, div, fdiv, final=mx / fdiv), 'first one divided'),
                  (lambda mx, n, pct=0.25, div=25., fdiv=1e4: _one_cycle_student(mx, n, pct, div, fdiv, final=mx / div), 'far below')],
    'shortcut': [(lambda x, w, s: (F.conv2d(nn.AvgPool2d(2)(x), w) if w is not None else nn.AvgPool2d(2)(x)) if s == 2 else (F.conv2d(x, w) if w is not None else x), 'ceil_mode'),
                 (lambda x, w, s: F.conv2d(x[:, :, ::s, ::s], w) if w is not None else x[:, :, ::s, ::s], 'three in four'),
                 (lambda x, w, s: F.avg_pool2d(x, 2, ceil_mode=True) if s == 2 else x, '1x1 conv')],
    'conv_params': [(lambda ni, nf, ks, bias=True: ni * nf * ks ** 2, 'add the biases'), (lambda ni, nf, ks, bias=True: nf * (ks * ks + bias), 'EVERY input channel'),
                    (lambda ni, nf, ks, bias=True: ni * nf * ks + nf * bias, 'ks * ks')],
    'dropout': [(lambda x, p, u: torch.where(u >= p, x, torch.zeros_like(x)), '1 / (1 - p)'), (lambda x, p, u: x * (u >= p) * (1 - p), 'UP'),
                (lambda x, p, u: x * (u < p) / (1 - p), 'DROPPING')],
    'mixup': [(lambda x, y, lam, perm: (lam * x + (1 - lam) * x[perm], y), 'targets too'),
              (lambda x, y, lam, perm: ((1 - lam) * x + lam * x[perm], (1 - lam) * y + lam * y[perm]), 'original batch'),
              (lambda x, y, lam, perm: (lam * x + (1 - lam) * x.flip(0), lam * y + (1 - lam) * y.flip(0)), None)],
    'label_smoothing_loss': [(lambda x, t, eps: ((1 - eps) * F.nll_loss(F.log_softmax(x, 1), t, reduction='none')
                                                 + eps / (x.shape[1] - 1) * (-F.log_softmax(x, 1).sum(1) - F.nll_loss(F.log_softmax(x, 1), t, reduction='none'))).mean(), 'ALL the classes'),
                             (lambda x, t, eps: (1 - eps) * F.cross_entropy(x, t) + eps * (-F.log_softmax(x, 1).sum(1)).mean(), 'MEAN of -log p'),
                             (lambda x, t, eps: F.cross_entropy(x, t) + eps * (-F.log_softmax(x, 1).mean(1)).mean(), '1 - eps')],
    'replace_rep': [(lambda t: re.sub(r'(\S)\1{3,}', lambda m: f' xxrep {len(m.group(0))} {m.group(1)} ', t), 'digits'),
                    (lambda t: re.sub(r'([^\s\d])(\1{3,})', lambda m: f' xxrep {len(m.group(2))} {m.group(1)} ', t), 'first one included'),
                    (lambda t: re.sub(r'([^\s\d])\1\1+', lambda m: f' xxrep {len(m.group(0))} {m.group(1)} ', t), '4 or more'),
                    (lambda t: re.sub(r'([^\s\d])\1{3,}', lambda m: f'xxrep {len(m.group(0))} {m.group(1)}', t), 'space on each side')],
    'mark_caps': [(lambda toks: [w for t in toks for w in ((['xxmaj'] if t[:1].isupper() and (t[1:].islower() or len(t) == 1) else [])
                                                        + (['xxup'] if len(t) > 1 and t.isupper() else []) + [t])], 'lower-case every token'),
                  (lambda toks: [w for t in toks for w in ((['xxup'] if t.isupper() else ['xxmaj'] if t[:1].isupper() and t[1:].islower() else []) + [t.lower()])], 'single capital'),
                  (lambda toks: [w for t in (w.lower() if False else w for w in toks) for w in ((['xxmaj'] if t[:1].isupper() and (t[1:].islower() or len(t) == 1) else []) + [t.lower()])], 'all-caps tokens first')],
    'numericalize': [(lambda toks, vocab: [{w: i for i, w in enumerate(vocab)}[t] for t in toks], 'KeyError'),
                     (lambda toks, vocab: [vocab.index(t) for t in toks if t in vocab], 'not dropped'),
                     (lambda toks, vocab: [vocab.index(t) if t in vocab else -1 for t in toks], 'not -1'),
                     (lambda toks, vocab: [vocab.index(t) if t in vocab else len(vocab) for t in toks], None)],
    'lm_batch': [(lambda *a: _lm_student(*a, no_shift=True), 'one token later'), (lambda *a: _lm_student(*a, cols=True), 'view(bs, L)'),
                 (lambda s, bs, bptt, i: (s[i * bptt:(i + 1) * bptt].repeat(bs, 1), s[i * bptt + 1:(i + 1) * bptt + 1].repeat(bs, 1)), None)],
    'lstm_cell': [(lambda *a: _lstm_student(*a, gates='ifog'), 'input, forget, cell'), (lambda *a: _lstm_student(*a, g_sigmoid=True), 'uses tanh'),
                  (lambda *a: _lstm_student(*a, tanh_out=False), 'tanh(c)')],
    'ar_tar': [(lambda h, a, b: a * h.pow(2).mean() + b * (h[1:] - h[:-1]).pow(2).mean(), 'TIME steps'),
               (lambda h, a, b: a * h.pow(2).sum() + b * (h[:, 1:] - h[:, :-1]).pow(2).sum(), 'means, not sums'),
               (lambda h, a, b: a * h.pow(2).mean(), None)],
}

def test_every_exercise_has_wrong_answers():
    assert set(WRONG) == set(EXERCISES)
    few = {k: len(v) for k, v in WRONG.items() if len(v) < 2}
    assert not few, few

def test_counts():
    assert len(EXERCISES) >= 30 and len({e.lesson for e in EXERCISES.values()}) >= 12
    for ex in EXERCISES.values(): assert ex.task and ex.mistakes, ex.name

@pytest.mark.parametrize('name', sorted(EXERCISES))
def test_reference_passes(name):
    r = run_check(name, EXERCISES[name].solution)
    assert r.status == 'pass', r.report
    assert r.report.startswith(f'{name}: passed all ')

@pytest.mark.parametrize('name,i', [(n, i) for n in sorted(WRONG) for i in range(len(WRONG[n]))])
def test_wrong_answer_caught(name, i):
    fn, hint = WRONG[name][i]
    t0 = time.perf_counter()
    r = run_check(name, fn)
    assert time.perf_counter() - t0 < 5, f'{name}: checking wrong answer {i} took {time.perf_counter() - t0:.1f} s'
    assert r.status == 'fail', f'{name}: wrong answer {i} passed:\n{r.report}'
    assert 'failed on the case' in r.report and 'Expected:' in r.report and 'Problem:' in r.report, r.report
    if hint is not None: assert r.hint is not None and hint in r.hint, f'{name}: wrong answer {i} got hint {r.hint!r}, not one with {hint!r}\n{r.report}'

@pytest.mark.parametrize('name', sorted(EXERCISES))
def test_unwritten_is_todo(name):
    def stub(*args, **kwargs): raise NotImplementedError
    r = run_check(name, type('Stub', (), {'__init__': stub}) if isinstance(EXERCISES[name].solution, type) else stub)
    assert r.status == 'todo' and 'is not written yet' in r.report, r.report

def test_report_of_a_failure():
    r = run_check('log_softmax', lambda x: (x.exp() / x.exp().sum(-1, keepdim=True)).log())
    lines = r.report.splitlines()
    assert lines[0] == 'log_softmax: failed on the case "large logits (thousands)" (4 of 6).', r.report
    assert lines[1:3] == ['Input:', '  x = tensor of shape (3, 10) (float32): ' + lines[2].split('(float32): ')[1]], r.report
    assert lines[3].startswith('Expected: tensor of shape (3, 10)') and lines[4].startswith('Received: tensor of shape (3, 10)'), r.report
    assert re.match(r'Problem:  the output: \d+ of 30 values differ; the largest difference is inf at index \[\d, \d\]', lines[5]), r.report
    assert lines[6].startswith('Hint:     your values overflow'), r.report

def test_report_of_an_error_names_the_line():
    def numericalize(toks, vocab):
        idx = {v: i for i, v in enumerate(vocab)}
        return [idx[t] for t in toks]
    r = run_check('numericalize', numericalize)
    assert "it raised KeyError: 'dog', at line" in r.report and 'return [idx[t] for t in toks]' in r.report, r.report
    assert 'KeyError' in r.hint

def test_report_of_an_error_in_an_exercise_set_names_no_line():
    "A step that returns p alone, not (p, buf): the error is raised in the exercise set's loop, which is not the student's code"
    assert EXERCISES['momentum_step'].run.__module__ != run_check.__module__  # the loop and the framework are in different modules
    r = run_check('momentum_step', lambda p, grad, buf, lr, mom: p - lr * grad)
    assert 'it raised ValueError: too many values to unpack' in r.report and ', at line' not in r.report, r.report

def test_check_prints_and_reference_mode(capsys, monkeypatch):
    def stub(x): raise NotImplementedError
    check('logsumexp', stub)
    assert 'logsumexp is not written yet' in capsys.readouterr().out
    monkeypatch.setenv(REFERENCE_ENV, '1')
    check('logsumexp', stub)
    out = capsys.readouterr().out
    assert 'the reference solution is checked in its place' in out and 'logsumexp: passed all 6 cases' in out
    with pytest.raises(AssertionError, match='logsumexp: failed'): check('logsumexp', lambda x: x.exp().sum(-1).log())
    with pytest.raises(ValueError, match="did you mean 'logsumexp'"): check('logsumexpp', stub)
    with pytest.raises(TypeError, match='fn must be your function'): check('logsumexp', torch.zeros(3))

def test_checks_are_fast():
    for name, ex in EXERCISES.items():
        t0 = time.perf_counter(); run_check(name, ex.solution)
        assert time.perf_counter() - t0 < 5, name

# ---------------------------------------------------------------------------------------------
# The property test: solutions against their counterparts on cases from any seed

WITH_COUNTERPART = sorted(n for n, e in EXERCISES.items() if e.counterpart is not None)

def test_most_have_a_counterpart():
    assert len(WITH_COUNTERPART) >= 25, WITH_COUNTERPART

@pytest.mark.parametrize('name', WITH_COUNTERPART)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_solution_agrees_with_counterpart(name, seed):
    ex = EXERCISES[name]
    for case in ex.inputs(torch.Generator().manual_seed(seed)):
        got, want = ex.call(ex.solution, case.args), ex.counterpart(*case.args)
        assert _differs(want, got, ex.atol, ex.rtol) is None, (case.what, _differs(want, got, ex.atol, ex.rtol))

# ---------------------------------------------------------------------------------------------
# The exercise notebooks: every exercise has a stub and a check cell; run end to end with the references

def _code(nb): return [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']

def test_every_exercise_is_in_a_notebook():
    assert EXERCISE_NBS, 'no exercise notebooks nbs/18a_*.ipynb ...'
    checked = []
    for nb in EXERCISE_NBS:
        code = _code(nb)
        for src in code:
            for name, fn in re.findall(r"^check\('(\w+)', (\w+)\)", src, re.M):
                assert name == fn, f'{nb.name}: check({name!r}, {fn})'
                stub = [s for s in code if re.search(rf'^(def|class) {name}\b', s, re.M)]
                assert stub and 'raise NotImplementedError' in stub[0], f'{nb.name}: no stub for {name}'
                checked.append(name)
    assert sorted(checked) == sorted(EXERCISES), set(checked) ^ set(EXERCISES)

@pytest.mark.parametrize('nb', EXERCISE_NBS, ids=[p.stem for p in EXERCISE_NBS])
def test_notebook_with_references(nb):
    env = dict(os.environ, MPLBACKEND='agg', **{REFERENCE_ENV: '1'})
    nbdev_test = Path(sys.executable).parent/'nbdev_test'
    r = subprocess.run([str(nbdev_test), '--path', str(nb), '--n_workers', '0'], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f'{nb.name} failed with the references:\n{r.stdout[-5000:]}\n{r.stderr[-10000:]}'

def test_show_progress_colors_by_last_check(monkeypatch):
    import matplotlib; matplotlib.use('agg')
    from matplotlib.colors import to_rgba
    from miniai import exercise_checks as mx
    monkeypatch.setattr(mx, '_RESULTS', {})
    check('logsumexp', EXERCISES['logsumexp'].solution)
    check('log_softmax', lambda x: x)
    check('cross_entropy', EXERCISES['cross_entropy'].solution)
    check('cross_entropy', lambda x, t: x.sum())  # the last check counts
    ax = mx.show_progress([3])
    labels = [t.get_text() for t in ax.get_yticklabels()]
    colors = dict(zip(labels, (p.get_facecolor() for p in ax.patches)))
    assert labels[:3] == ['03 logsumexp', '03 log_softmax', '03 cross_entropy'] and len(labels) == 7, labels
    assert colors['03 logsumexp'] == to_rgba('tab:green') and colors['03 log_softmax'] == to_rgba('tab:red')
    assert colors['03 cross_entropy'] == to_rgba('tab:red') and colors['03 accuracy'] == to_rgba('lightgray')
    assert ax.get_title() == '1 of 7 passed'


def test_every_known_mistake_is_caught_with_its_own_hint():
    "Each exercise's known mistakes, handed in as answers, fail with the hint written for them (what 18d's `show_checks` charts)"
    bad = [(e.name, m.hint[:50], r.status, r.hint) for e in EXERCISES.values() for m in e.mistakes
           for r in [run_check(e.name, m.like)] if not (r.status == 'fail' and r.hint == m.hint)]
    assert sum(len(e.mistakes) for e in EXERCISES.values()) >= 38 and not bad, bad
