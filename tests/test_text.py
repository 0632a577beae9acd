"""miniai.text, miniai.fortunes, miniai.token_cache: bad input (files, loaders, vocabulary), the token cache and the
batching properties.

The notebooks (nbs/16_text.ipynb and its appendices 16a, 16b) show each piece working; these tests add what would
bury the lesson: the faults of files, folders and sizes, hypothesis-driven properties of the language-model stream
and the samplers.
"""
from pathlib import Path
import pytest
import torch
from hypothesis import given, settings, strategies as st
from miniai.datablock import ItemError, SplitData, label_by_func, CategoryProcessor
from miniai.fortunes import (Fortune, FortunesNotFoundError, find_fortunes, fortune_splitter, load_fortunes,
                             parse_fortunes, read_text, stratified_split)
from miniai.text import (BOS, EOS, PAD, UNK, SPECIAL_TOKENS, LMLoader, NumericalizeProcessor, SortSampler,
                         SortishSampler, TextList, TokenizeProcessor, pad_collate, padding_fraction, tokenize)
from miniai.token_cache import cached_tokens, load_tokens, tokens_cache_file

ROOT = Path(__file__).resolve().parent.parent


# ---- files -------------------------------------------------------------------------------------------------------

def test_empty_binary_and_non_utf8_files_are_named(tmp_path):
    (tmp_path/'empty.txt').write_bytes(b'')
    (tmp_path/'blank.txt').write_bytes(b' \n\n\t')
    (tmp_path/'img.txt').write_bytes(b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR')
    (tmp_path/'latin.txt').write_bytes('line one\nna\xefve\n'.encode('latin-1'))
    with pytest.raises(ValueError, match=r'empty\.txt: the file is empty \(0 bytes\)'): read_text(tmp_path/'empty.txt')
    with pytest.raises(ValueError, match=r'blank\.txt: the file is empty'): read_text(tmp_path/'blank.txt')
    with pytest.raises(ValueError, match=r'img\.txt: a NUL byte at byte 8: this is a binary file'): read_text(tmp_path/'img.txt')
    with pytest.raises(ValueError, match=r"latin\.txt: byte 11 \(line 2\) is b'\\xef', which is not UTF-8.*iconv"):
        read_text(tmp_path/'latin.txt')


def test_utf8_text_is_read_exactly(tmp_path):
    t = 'Caf\u00e9 \u2014 na\u00efve \U0001f600\n%\nsecond\n'
    (tmp_path/'u8').write_text(t, encoding='utf-8')
    assert read_text(tmp_path/'u8') == t


def test_fortune_folder_faults(tmp_path, private_cache, monkeypatch):
    monkeypatch.setenv('MINIAI_FORTUNES', '')
    monkeypatch.setattr('miniai.fortunes.FORTUNES_DIR', tmp_path/'nowhere')
    with pytest.raises(FortunesNotFoundError, match='sudo apt-get install fortunes') as e: find_fortunes(tmp_path/'given')
    searched = str(e.value).split('\n')[1:4]  # the folders searched, in order: the argument, the cache, the Debian folder
    assert [l.strip() for l in searched] == [str(tmp_path/'given'), str(private_cache/'fortunes'), str(tmp_path/'nowhere')]
    d = tmp_path/'f'; d.mkdir()
    (d/'jokes').write_text('One.\n%\nTwo.\n')
    (d/'jokes.dat').write_bytes(b'\x00\x00\x00\x02binary index')  # skipped, like the Debian package's indexes
    (d/'jokes.u8').symlink_to(d/'jokes')                            # skipped: a second name for jokes
    monkeypatch.setenv('MINIAI_FORTUNES', str(d))
    assert find_fortunes() == d and load_fortunes(small=False) == {'jokes': ['One.', 'Two.']}
    (d/'nothing').write_text('%\n%\n')  # a category with no texts
    with pytest.raises(ValueError, match=r'nothing: no texts, only lines holding %'): load_fortunes(small=False)
    (d/'nothing').write_bytes('Gr\xfc\xdfe\n'.encode('latin-1'))
    with pytest.raises(ValueError, match=r"nothing: byte 2 \(line 1\)"): load_fortunes(small=False)


def test_parse_fortunes_keeps_every_text():
    assert parse_fortunes('%\n%\n') == []
    assert parse_fortunes('a\r\n%\r\nb') == ['a', 'b']
    assert parse_fortunes('  indented\n\n  two paras\n%  \nnext') == ['  indented\n\n  two paras', 'next']


def test_small_subset_is_fixed_and_has_every_category():
    full, small = load_fortunes(small=False), load_fortunes(small=True)
    assert small.keys() == full.keys()
    for c in full: assert small[c] == full[c][:max(1, round(len(full[c])/10))]


def test_textlist_from_files_faults(tmp_path):
    for lbl in ('a', 'b'):
        (tmp_path/lbl).mkdir()
        (tmp_path/lbl/'1.txt').write_text(f'text of {lbl}')
    tl = TextList.from_files(tmp_path)
    assert [tl[i] for i in range(2)] == ['text of a', 'text of b']
    (tmp_path/'c').mkdir()
    with pytest.raises(ValueError, match=r"c holds no \.txt files, while 2 folders beside it do"): TextList.from_files(tmp_path)
    (tmp_path/'c'/'x.txt').write_bytes(b'')
    with pytest.raises(ValueError, match=r'1 empty file\(s\), first .*c/x\.txt'): TextList.from_files(tmp_path)
    (tmp_path/'c'/'x.txt').write_bytes(b'\xff\xfeh\x00i\x00')  # UTF-16: neither UTF-8 nor NUL-free
    tl = TextList.from_files(tmp_path)
    with pytest.raises(ItemError, match=r'x\.txt'): tl[2]
    with pytest.raises(ValueError, match=r'x\.txt: a NUL byte'): TokenizeProcessor(cache=False, progress=False)(tl.items)
    with pytest.raises(FileNotFoundError, match=r'no \.md files'): TextList.from_files(tmp_path, extensions='md')


# ---- split ---------------------------------------------------------------------------------------------------------

def test_fortune_splitter_missing_category():
    items = [Fortune('t', 'fortunes', i) for i in range(10)]  # what fortunes-min installs
    with pytest.raises(ValueError, match=r"no texts of the categories \['computers'.*sudo apt-get install fortunes"):
        fortune_splitter(items)
    sp = fortune_splitter(items + [Fortune('c', 'x', i) for i in range(5)], classes=['x'], other=None)
    assert sum(sp(o) is True for o in items + [Fortune('c', 'x', i) for i in range(5)]) == 1
    assert all(sp(o) is None for o in items)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from('abcd'), min_size=1, max_size=200), st.floats(0.05, 0.95), st.integers(0, 5))
def test_stratified_split_properties(labels, pct, seed):
    try: tr, va = stratified_split(labels, pct, seed)
    except ValueError as e:
        assert 'so one set has none' in str(e)
        return
    assert sorted(tr + va) == list(range(len(labels)))
    for l in set(labels):
        assert sum(labels[i] == l for i in va) == round(pct * labels.count(l))
    assert (tr, va) == stratified_split(labels, pct, seed)


# ---- tokens and vocabulary -----------------------------------------------------------------------------------------

def test_fortunes_found_in_the_cache_folder(private_cache, monkeypatch, tmp_path):
    monkeypatch.setenv('MINIAI_FORTUNES', '')
    monkeypatch.setattr('miniai.fortunes.FORTUNES_DIR', tmp_path/'nowhere')
    (private_cache/'fortunes').mkdir(parents=True)
    (private_cache/'fortunes'/'mine').write_text('A.\n%\nB.\n')
    assert find_fortunes() == private_cache/'fortunes' and load_fortunes(small=False) == {'mine': ['A.', 'B.']}


def _counting(calls):
    def tokenize_all(texts):
        calls.append(len(texts))
        return [t.split() for t in texts]
    return tokenize_all


def test_tokenize_cache_lives_in_the_cache_dir_and_is_keyed(private_cache):
    texts = ['Hello World!!!!', 'It is <br />NOT so.']
    tp = TokenizeProcessor(progress=False)
    toks = tp(texts)
    files = list((private_cache/'text').iterdir())
    assert len(files) == 1 and files[0] == tokens_cache_file(texts, tp.settings())
    tp.tokenize_all = None  # read back: a second call does not tokenize
    assert tp(texts) == toks
    TokenizeProcessor(progress=False, post_rules=[])(texts)  # other rules: another file
    TokenizeProcessor(progress=False)(texts[:1])             # other texts (small vs full): another file
    assert len(list((private_cache/'text').iterdir())) == 3
    assert not any(p.is_relative_to(ROOT) for p in (private_cache/'text').iterdir())
    assert TokenizeProcessor(progress=False, cache=False)(['Not kept.']) and len(list((private_cache/'text').iterdir())) == 3


def test_damaged_or_foreign_cache_files_are_rebuilt(private_cache):
    texts, calls = ['a b', 'c'], []
    f = _counting(calls)
    assert cached_tokens(f, texts, ['x']) == [['a', 'b'], ['c']] and calls == [2]
    fn = tokens_cache_file(texts, ['x'])
    assert cached_tokens(f, texts, ['x']) == [['a', 'b'], ['c']] and calls == [2]  # read back
    good = fn.read_bytes()
    for bad in (good[:len(good)//2], b'', b'[1, 2]', good.replace(fn.stem.encode(), b'another-key'),
                good.replace(b'[["a", "b"], ["c"]]', b'[["a", "b"]]')):  # cut, empty, not a dict, another name, too few
        fn.write_bytes(bad)
        assert load_tokens(fn, 2) is None
        assert cached_tokens(f, texts, ['x']) == [['a', 'b'], ['c']]
    assert calls == [2] * 6 and load_tokens(fn, 2) == [['a', 'b'], ['c']]
    assert load_tokens(private_cache/'text'/'missing.json', 2) is None


def test_cache_names_cannot_collide_by_joining_texts(private_cache):
    assert tokens_cache_file(['ab', 'c'], []) != tokens_cache_file(['a', 'bc'], [])
    def rule(t): return t
    assert tokens_cache_file(['a'], [rule]) != tokens_cache_file(['a'], [lambda t: t])  # a rule counts by its code
    assert tokens_cache_file(['a'], [rule]) == tokens_cache_file(['a'], [rule])


def test_tokenize_processes_agree_and_unpicklable_rules_are_named(private_cache):
    texts = [f'Text {i}: SOME words, some Words.' * (i % 4 + 1) for i in range(40)]
    one = TokenizeProcessor(n_workers=1, chunksize=7, cache=False, progress=False)(texts)
    two = TokenizeProcessor(n_workers=2, chunksize=7, cache=False, progress=False)(texts)
    assert one == two == tokenize(texts)
    assert all(t[0] == BOS and t[-1] == EOS for t in one)
    shout = lambda t: t.upper()
    with pytest.raises(ValueError, match=r'cannot be sent to worker processes .*lambda.*or use n_workers=1'):
        TokenizeProcessor(n_workers=2, chunksize=7, cache=False, progress=False, pre_rules=[shout])(texts)
    assert TokenizeProcessor(n_workers=1, cache=False, progress=False, pre_rules=[shout], post_rules=[])(['ab']) == [['AB']]


def test_unseen_validation_words_become_unk_and_are_counted():
    num = NumericalizeProcessor(min_freq=1)
    num([['the', 'cat', 'sat'], ['the', 'dog']])
    ids = num([['the', 'zebra', 'sat', 'on', 'the', 'zebra']])
    assert ids == [[num.otoi['the'], 0, num.otoi['sat'], 0, num.otoi['the'], 0]]
    assert (num.unk_stats.tokens, num.unk_stats.unk) == (6, 3)
    assert num.unk_stats.words == {'zebra': 2, 'on': 1}
    assert "3 of 6 tokens (50.0%)" in str(num.unk_stats) and "'zebra' (2)" in str(num.unk_stats)
    assert num.deproc1(ids[0]) == ['the', UNK, 'sat', UNK, 'the', UNK]


def test_vocab_limits_and_specials_first():
    toks = [['a'] * 5 + ['b'] * 3 + ['c'] * 2 + ['d', PAD]]
    num = NumericalizeProcessor(max_vocab=10, min_freq=2)
    num(toks)
    assert num.vocab == SPECIAL_TOKENS + ['a', 'b']
    assert NumericalizeProcessor(vocab=num.vocab)([['b', 'zz']]) == [[9, 0]]


def test_a_category_with_no_texts_in_training_is_refused():
    items = [Fortune(f'text {i}', 'x', i) for i in range(10)] + [Fortune('lonely', 'y', 0)]
    sd = SplitData.split_by_func(TextList(items), lambda o: o.category == 'y')  # y only in validation
    with pytest.raises(ValueError, match=r"label 'y' .* not in the vocabulary"):
        label_by_func(sd, lambda o: o.category, proc_y=CategoryProcessor())


# ---- language-model batches ----------------------------------------------------------------------------------------

@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=12), st.integers(1, 9), st.integers(1, 12), st.integers(0, 3))
def test_lm_stream_properties(lens, bs, bptt, seed):
    start, texts = 0, []
    for n in lens:
        texts.append(list(range(start, start + n))); start += n
    n = sum(lens)
    if n - 1 < bs or bptt > (n - 1) // bs:
        with pytest.raises(ValueError, match='bs=|bptt='): LMLoader(texts, bs, bptt, shuffle=True, seed=seed)
        return
    dl = LMLoader(texts, bs, bptt, shuffle=True, seed=seed)
    s = LMLoader(texts, bs, bptt, shuffle=True, seed=seed).stream()
    assert sorted(s.tolist()) == list(range(n))  # the stream is the texts, each once
    batches = list(dl)
    assert len(batches) == len(dl)
    L = (n - 1) // bs
    xs, ys = torch.cat([b[0] for b in batches], 1), torch.cat([b[1] for b in batches], 1)
    assert xs.shape == (bs, L) and all(b[0].shape[1] <= bptt for b in batches)
    assert torch.equal(xs.flatten(), s[:bs * L])         # every token an input exactly once (all but < bs+1 at the end)
    assert torch.equal(ys.flatten(), s[1:bs * L + 1])    # targets: the next token of the stream
    for a, b in zip(batches, batches[1:]):                # row i of batch k+1 continues row i of batch k
        assert torch.equal(b[0][:, 0], a[1][:, -1])


def test_lm_bad_sizes_name_the_values():
    texts = [[1, 2, 3], [4, 5]]
    with pytest.raises(ValueError, match=r'hold 5 tokens, too few for bs=5 rows.*bs <= 4'): LMLoader(texts, bs=5, bptt=1)
    with pytest.raises(ValueError, match=r'each of the bs=2 rows holds 2 tokens .* fewer than bptt=3'): LMLoader(texts, bs=2, bptt=3)
    with pytest.raises(ValueError, match=r'bptt must be a positive int, got bptt=2.0'): LMLoader(texts, bs=1, bptt=2.0)
    with pytest.raises(ValueError, match=r'hold 0 tokens'): LMLoader([], bs=1, bptt=1)


def test_a_text_longer_than_the_stream_rows():
    dl = LMLoader([list(range(1000))], bs=3, bptt=100)
    x, y = next(iter(dl))
    assert x[:, 0].tolist() == [0, 333, 666] and torch.equal(y, x + 1)
    assert len(dl) == 4


# ---- classifier batches --------------------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=1, max_size=400), st.integers(1, 64), st.integers(1, 4), st.integers(0, 9))
def test_sortish_sampler_properties(lens, bs, mult, seed):
    order = list(SortishSampler(lens, bs, chunk_mult=mult, seed=seed))
    assert sorted(order) == list(range(len(lens)))
    assert max(lens[i] for i in order[:bs]) == max(lens) or len(lens) % bs and max(lens[i] for i in order[-(len(lens) % bs):]) == max(lens)
    assert order == list(SortishSampler(lens, bs, chunk_mult=mult, seed=seed))  # seeded
    srt = list(SortSampler(lens))
    assert sorted(srt) == list(range(len(lens))) and all(lens[a] >= lens[b] for a, b in zip(srt, srt[1:]))
    if len(lens) % bs == 0:  # all batches full: longest-first pads least (each batch's maximum is as small as it can be)
        assert padding_fraction(lens, srt, bs) <= padding_fraction(lens, list(range(len(lens))), bs) + 1e-12


def test_sort_sampler_with_a_partial_last_batch_is_not_always_least_padding():
    "With a short last batch, longest-first is not optimal: hypothesis found this case (bs=2: [1, 0] + [0] against [0, 0] + [1])"
    lens = [0, 0, 1]
    assert list(SortSampler(lens)) == [2, 0, 1]
    assert padding_fraction(lens, [2, 0, 1], 2) == 0.5 and padding_fraction(lens, [0, 1, 2], 2) == 0.0


def test_sortish_pads_less_than_random_on_real_lengths():
    g = torch.Generator().manual_seed(0)
    lens = ((torch.randn(3000, generator=g)*0.8 + 3.5).exp() + 3).long().tolist()  # log-normal lengths, from `g` (not the global generator)
    rand = padding_fraction(lens, torch.randperm(3000, generator=g).tolist(), 64)
    sortish = padding_fraction(lens, list(SortishSampler(lens, 64, seed=0)), 64)
    assert sortish < rand / 3


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(2, 50), max_size=30), min_size=1, max_size=10), st.booleans())
def test_pad_collate_properties(texts, pad_first):
    x, y = pad_collate([(t, i) for i, t in enumerate(texts)], pad_idx=1, pad_first=pad_first)
    assert x.shape == (len(texts), max(map(len, texts))) and y.tolist() == list(range(len(texts)))
    for row, t in zip(x, texts):
        assert row[row != 1].tolist() == t
        pads = (row == 1).nonzero().flatten().tolist()
        assert pads == (list(range(len(pads))) if pad_first else list(range(len(t), x.shape[1])))


def test_pad_collate_empty_and_bad_bs():
    with pytest.raises(ValueError, match='empty batch'): pad_collate([])
    with pytest.raises(ValueError, match='bs must be a positive int, got bs=0'): SortishSampler([1, 2], bs=0)


def test_loaders_without_a_seed_leave_torch_seeded():
    "An LMLoader or SortishSampler made without a seed draws its seed from torch's generator: torch stays reproducible"
    from miniai.text import LMLoader, SortishSampler
    for make in (lambda: LMLoader([list(range(50))], bs=2, bptt=5), lambda: SortishSampler([3, 1, 2, 5], bs=2)):
        draws = []
        for _ in range(2):
            torch.manual_seed(0); make(); draws.append(torch.rand(3))
        assert torch.equal(*draws)
