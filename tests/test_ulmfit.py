"""miniai.ulmfit and miniai.encoder_checks: the AWD-LSTM regularisers, the hidden state, the RNN callback, the fitter,
and an encoder state or vocabulary that does not fit.

The notebook (nbs/17_ulmfit.ipynb) shows each piece working at a student's size; these tests pin down the
properties the lesson relies on (masks constant over time, nothing changed in evaluation, the dropped fraction
near p), and the errors for an encoder state or a vocabulary that does not fit.
"""
from types import SimpleNamespace
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from miniai.datasets import DataLoaders
from miniai.encoder_checks import check_vocab, load_encoder
from miniai.learner import Callback, TrainLearner
from miniai.resnet import fit_one_cycle
from miniai.sgd import Adam
from miniai.ulmfit import (AWD_LSTM, EmbeddingDropout, RNNCB, RNNDropout, TextClassifier, WeightDropout, dropout_mask,
                           generate, get_language_model, get_text_classifier, layer_groups,
                           masked_concat_pool, freeze_to)

CFG = dict(emb_sz=8, n_hid=12, n_layers=2)


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


# ---- the regularisers --------------------------------------------------------------------------------------------

@pytest.mark.parametrize('p', [0.1, 0.5, 0.8])
def test_dropout_mask_fraction_and_mean(p):
    m = dropout_mask(torch.zeros(1), (200_000,), p)
    assert abs((m == 0).float().mean().item() - p) < 0.01
    assert abs(m.mean().item() - 1) < 0.02  # the kept values are scaled by 1/(1-p)
    assert torch.allclose(m[m != 0], torch.tensor(1/(1-p)))  # and the others are dropped: exactly 0


def test_rnn_dropout_one_mask_per_sequence():
    dp = RNNDropout(0.4)
    y = dp(torch.ones(64, 20, 30))
    assert torch.equal(y, y[:, :1].expand_as(y))  # every time step has its sequence's mask
    assert not torch.equal(y[0], y[1])  # but sequences differ
    assert abs((y == 0).float().mean().item() - 0.4) < 0.02
    x = torch.randn(4, 5, 6, requires_grad=True)
    assert torch.equal(dp.eval()(x), x) and torch.equal(RNNDropout(0.)(x), x)


def test_rnn_dropout_gradient_is_the_mask():
    torch.manual_seed(1)
    dp, x = RNNDropout(0.5), torch.ones(3, 7, 4, requires_grad=True)
    y = dp(x)
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(x*mask)/dx = mask, and y = mask for x = 1


def test_weight_dropout_parameters_and_eval():
    lstm = nn.LSTM(5, 6, batch_first=True)
    plain = nn.LSTM(5, 6, batch_first=True)
    plain.load_state_dict(lstm.state_dict())
    wd = WeightDropout(lstm, 0.5)
    names = dict(wd.named_parameters())
    assert 'weight_hh_l0_raw' in names and 'module.weight_hh_l0' not in names
    assert 'module.weight_hh_l0' not in wd.state_dict()
    x = torch.randn(2, 9, 5)
    assert torch.equal(wd.eval()(x)[0], plain(x)[0])  # evaluation: the raw weights
    wd.train()
    a, b = wd(x)[0], wd(x)[0]
    assert not torch.equal(a, b)  # a new draw for every call


def test_weight_dropout_fraction_and_training_updates_raw_weights():
    wd = WeightDropout(nn.LSTM(10, 50, batch_first=True), 0.3)
    x = torch.randn(2, 3, 10)
    fracs = []
    for _ in range(100):
        wd(x)
        fracs.append((wd.module.weight_hh_l0 == 0).float().mean().item())
    assert abs(sum(fracs)/len(fracs) - 0.3) < 0.01
    before = wd.weight_hh_l0_raw.detach().clone()
    opt = torch.optim.SGD(wd.parameters(), lr=0.1)
    wd(x)[0].pow(2).sum().backward(); opt.step()
    assert not torch.equal(before, wd.weight_hh_l0_raw)


def test_weight_dropout_several_weights():
    wd = WeightDropout(nn.LSTM(4, 4, batch_first=True), 0.5, ['weight_hh_l0', 'weight_ih_l0'])
    assert {'weight_hh_l0_raw', 'weight_ih_l0_raw'} <= set(dict(wd.named_parameters()))
    wd(torch.randn(1, 2, 4))
    assert (wd.module.weight_ih_l0 == 0).any() and (wd.module.weight_hh_l0 == 0).any()


def test_embedding_dropout_whole_words():
    emb = nn.Embedding(500, 6, padding_idx=1)
    edp = EmbeddingDropout(emb, 0.5)
    words = torch.randint(0, 500, (8, 40))
    out = edp(words)
    zero = out.eq(0).all(-1)
    for w in words.unique():
        if w == 1: continue
        assert zero[words == w].all() or not zero[words == w].any(), f'word {w} dropped at some positions only'
    assert torch.equal(edp.eval()(words), emb(words))
    fracs = [EmbeddingDropout(nn.Embedding(2000, 3), 0.25)(torch.arange(2000)).eq(0).all(1).float().mean() for _ in range(20)]
    assert abs(torch.stack(fracs).mean().item() - 0.25) < 0.01


# ---- the hidden state --------------------------------------------------------------------------------------------

def test_awd_lstm_carries_detached_state_and_resets():
    enc = AWD_LSTM(30, **CFG)
    x = torch.randint(0, 30, (4, 6))
    raw, outs = enc(x)
    assert [o.shape for o in raw] == [(4, 6, 12), (4, 6, 8)] and len(outs) == 2
    assert all(not h.requires_grad and not c.requires_grad for h, c in enc.hidden)
    enc(torch.randint(0, 30, (2, 6)))  # another batch size: starts from zeros instead of failing
    assert enc.hidden[0][0].shape == (1, 2, 12)
    enc.reset()
    assert enc.hidden == [None, None]


def test_language_model_reset_reaches_the_encoder():
    lm = get_language_model(30, **CFG)
    lm(torch.randint(0, 30, (2, 5)))
    assert lm[0].hidden[0] is not None
    lm.reset()
    assert lm[0].hidden[0] is None


# ---- the callback ------------------------------------------------------------------------------------------------

def _learn(model, training=True):
    return SimpleNamespace(model=model, training=training)


def test_rnncb_ar_tar_in_training_only():
    lm = get_language_model(30, **CFG)
    cb = RNNCB(alpha=2., beta=1., clip=None)
    learn = _learn(lm)
    learn.preds = lm(torch.randint(0, 30, (3, 7)))
    cb.after_predict(learn)
    assert isinstance(learn.preds, torch.Tensor) and learn.preds.shape == (3, 7, 30)
    learn.loss = torch.tensor(1.)
    cb.after_loss(learn)
    h = cb.raw_outs[-1]
    expected = 1 + 2*cb.outs[-1].pow(2).mean() + (h[:, 1:] - h[:, :-1]).pow(2).mean()
    assert torch.allclose(learn.loss, expected)
    learn.training, learn.loss = False, torch.tensor(1.)
    cb.after_loss(learn)
    assert learn.loss.item() == 1.  # validation: the plain loss


def test_rnncb_clips_gradients_and_resets():
    lm = get_language_model(30, **CFG)
    (lm(torch.randint(0, 30, (3, 7)))[0] * 1000).sum().backward()
    learn = _learn(lm)
    RNNCB(clip=0.25).after_backward(learn)
    total = torch.cat([p.grad.flatten() for p in lm.parameters() if p.grad is not None]).norm()
    assert total.item() == pytest.approx(0.25, rel=1e-3)
    RNNCB().before_epoch(learn)
    assert lm[0].hidden[0] is None


# ---- the fitter ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('pair', [True, False], ids=['(train, valid) pair', 'DataLoaders'])
def test_fit_one_cycle_per_group_peaks_on_any_dls(pair):
    "Lesson 12's fitter as 17 uses it: a Learner with two param groups, one peak each; the schedule spans every training batch"
    x, y = torch.randn(40, 3), torch.randn(40, 1)
    train, valid = DataLoader(TensorDataset(x, y), batch_size=8), DataLoader(TensorDataset(x[:16], y[:16]), batch_size=8)
    dls = (train, valid) if pair else DataLoaders(train, valid)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    groups = lambda params, lr: Adam([{'params': model[0].parameters()}, {'params': model[1].parameters()}], lr)
    learn = TrainLearner(model, dls, lr=1e-2, opt_func=groups)
    lrs = []
    class Rec(Callback):
        order = 100
        def after_step(self, learn): lrs.append([g['lr'] for g in learn.opt.param_groups])
    fit_one_cycle(learn, epochs=2, lr=[1e-3, 1e-2], cbs=[Rec()])
    assert len(lrs) == 2 * len(train) == 10
    for i, peak in enumerate([1e-3, 1e-2]):  # each group up to its own peak, then down to almost 0
        assert max(l[i] for l in lrs) == pytest.approx(peak, rel=0.05) and lrs[-1][i] < peak / 100


# ---- bad input -----------------------------------------------------------------------------------------------------

def test_load_encoder_refuses_another_vocabulary():
    state = AWD_LSTM(3000, **CFG).state_dict()
    with pytest.raises(ValueError, match=r'vocabulary of 3,000 tokens, this encoder 2,500'):
        load_encoder(AWD_LSTM(2500, **CFG), state)


@pytest.mark.parametrize('other', [dict(emb_sz=10), dict(n_hid=20), dict(n_layers=3)])
def test_load_encoder_refuses_another_size(other):
    state = AWD_LSTM(40, **CFG).state_dict()
    enc = AWD_LSTM(40, **{**CFG, **other})
    with pytest.raises(ValueError, match='does not fit this one') as e:
        load_encoder(enc, state)
    assert f"{next(iter(other))}={next(iter(other.values()))}" in str(e.value)


def test_load_encoder_refuses_a_whole_language_model_and_loads_an_encoder():
    lm = get_language_model(40, **CFG)
    enc = AWD_LSTM(40, **CFG)
    with pytest.raises(ValueError, match=r'pass model\[0\].state_dict\(\)'):
        load_encoder(enc, lm.state_dict())
    load_encoder(enc, lm[0].state_dict())
    assert all(torch.equal(a, b) for a, b in zip(enc.state_dict().values(), lm[0].state_dict().values()))


def test_vocabulary_mismatch_is_caught_before_training():
    lm_vocab = [f'w{i}' for i in range(50)]
    state = AWD_LSTM(50, **CFG).state_dict()
    with pytest.raises(ValueError, match=r'vocabulary of 40 tokens, but the language model.s has 50'):
        get_text_classifier(lm_vocab[:40], 3, state, lm_vocab=lm_vocab, **CFG)
    swapped = lm_vocab[:5] + ['w6', 'w5'] + lm_vocab[7:]
    with pytest.raises(ValueError, match=r"differ from index 5 on \('w6'"):
        check_vocab(lm_vocab, swapped)
    with pytest.raises(ValueError, match='pass lm_vocab='):
        get_text_classifier(lm_vocab, 3, state, **CFG)
    m = get_text_classifier(lm_vocab, 3, state, lm_vocab=list(lm_vocab), **CFG)
    assert torch.equal(m.encoder.emb.weight, state['emb.weight'])


def test_generate_is_seeded_and_checks_the_start():
    vocab = ['xxunk', 'xxpad', 'xxbos', 'xxeos'] + [f'w{i}' for i in range(20)]
    lm = get_language_model(len(vocab), **CFG)
    a, b = generate(lm, vocab, 10, seed=3), generate(lm, vocab, 10, seed=3)
    assert a == b and a.startswith('xxbos')
    with pytest.raises(ValueError, match=r"not in the vocabulary: \['hello'\]"):
        generate(lm, vocab, 5, start='xxbos hello')
