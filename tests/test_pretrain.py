"""miniai.pretrain: the saved language model and its refusals, a pretraining run that is stopped and resumed, the
vocabulary matching of the transfer step.

The notebook (nbs/17c_pretrained.ipynb) runs these pieces on the corpus; here they run on made-up token indices, so
the tests need no corpus and take a few seconds.
"""
import json
import pytest
import torch
from miniai.pretrain import (PRETRAIN_CFG, PretrainedError, _save_ids, load_lm, match_embeddings, pretrain_dir,
                             pretrain_lm, save_lm)
from miniai.text import SPECIAL_TOKENS
from miniai.ulmfit import get_language_model

TINY = dict(PRETRAIN_CFG, emb_sz=8, n_hid=12, n_layers=2, bs=4, bptt=6, n_evals=3)
VOCAB = SPECIAL_TOKENS + [f'w{i}' for i in range(40)]


def fake_ids(n, seed):
    "`n` documents of token indices with some structure (each word tends to be followed by the next one)"
    g = torch.Generator().manual_seed(seed)
    docs = []
    for _ in range(n):
        start, ln = torch.randint(8, 48, (1,), generator=g).item(), torch.randint(5, 30, (1,), generator=g).item()
        docs.append([2] + [8 + (start + k) % 40 for k in range(ln)] + [3])
    return docs


def run(tmp_path, budget_s=None, cfg=TINY):
    folder = tmp_path/'run'
    _save_ids(folder, VOCAB, fake_ids(120, 0), fake_ids(12, 1))
    calls = 1
    while not pretrain_lm(folder, cfg, budget_s=budget_s, log=lambda s: None): calls += 1
    return folder, calls


def test_stopped_and_resumed_run_gives_the_same_model(tmp_path):
    whole, _ = run(tmp_path/'a')
    parts, calls = run(tmp_path/'b', budget_s=0.02)
    assert calls > 2
    a, b = load_lm(whole)[0], load_lm(parts)[0]
    for k in a: assert torch.equal(a[k], b[k]), k
    rec = json.loads((whole/'record.json').read_text())
    assert [e['step'] for e in rec['evals']] == [0, *sorted({round(rec['steps'] * (k + 1) / 3) for k in range(3)})]
    assert rec['evals'][-1]['ce'] < rec['evals'][0]['ce']  # it learnt something
    assert not (whole/'checkpoint.pt').exists()


def test_checkpoint_of_other_settings_is_refused(tmp_path):
    folder = tmp_path/'run'
    _save_ids(folder, VOCAB, fake_ids(120, 0), fake_ids(12, 1))
    assert not pretrain_lm(folder, TINY, budget_s=0, log=lambda s: None)  # stops after its first step, with a checkpoint
    with pytest.raises(PretrainedError, match='other settings'): pretrain_lm(folder, dict(TINY, lr=1e-3), log=lambda s: None)


def test_pretrain_dir_depends_on_every_setting():
    assert pretrain_dir(False, TINY) != pretrain_dir(False, dict(TINY, lr=1e-3))
    assert pretrain_dir(False, TINY) == pretrain_dir(False, dict(TINY))


def test_load_lm_refusals(tmp_path):
    cfg = dict(emb_sz=4, n_hid=6, n_layers=2)
    lm = get_language_model(len(VOCAB), **cfg)
    save_lm(tmp_path, lm, VOCAB, cfg, note=1)
    state, vocab, c, rec = load_lm(tmp_path, cfg, VOCAB)
    assert vocab == VOCAB and rec['note'] == 1 and c == cfg
    with pytest.raises(PretrainedError, match='n_hid=6 saved, 8 wanted'): load_lm(tmp_path, dict(cfg, n_hid=8))
    with pytest.raises(PretrainedError, match='first different at index 9'): load_lm(tmp_path, vocab=VOCAB[:9] + ['x'] + VOCAB[10:])
    data = bytearray((tmp_path/'lm.pt').read_bytes()); data[-100] ^= 1
    (tmp_path/'lm.pt').write_bytes(bytes(data))
    with pytest.raises(PretrainedError, match='damaged'): load_lm(tmp_path)
    with pytest.raises(FileNotFoundError, match='bench/pretrain.py'): load_lm(tmp_path/'none')


def test_match_embeddings_moves_rows_and_fills_new_words_with_the_mean():
    old, new = SPECIAL_TOKENS + ['a', 'b', 'c'], SPECIAL_TOKENS + ['c', 'z', 'a']
    lm = get_language_model(len(old), emb_sz=4, n_hid=6, n_layers=2)
    st = lm.state_dict()
    moved, shared = match_embeddings(st, old, new)
    assert shared == 2
    lm2 = get_language_model(len(new), emb_sz=4, n_hid=6, n_layers=2)
    lm2.load_state_dict(moved)
    e_old, e_new = lm[0].emb.weight, lm2[0].emb.weight
    n = len(SPECIAL_TOKENS)
    assert torch.equal(e_new[n], e_old[n + 2]) and torch.equal(e_new[n + 2], e_old[n])
    assert torch.allclose(e_new[n + 1], e_old.mean(0))
    assert lm2[1].decoder.weight is lm2[0].emb.weight  # still tied
    with pytest.raises(ValueError, match='none of the 1 words'): match_embeddings(st, old, SPECIAL_TOKENS + ['q'])
