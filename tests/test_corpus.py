"""miniai.corpus: the readers on small files written in each source's format, the missing-package errors, the split,
the fortunes overlap on planted examples, and the data step's check for the three packages.

The notebook (nbs/17a_pretrain.ipynb) shows each reader on the real files; these tests build the formats from scratch,
so they pin down what the readers rely on (dictd's base-64 index, WordNet's hexadecimal word count, the FAQ's files).
"""
import gzip, os, subprocess
from collections import Counter
from pathlib import Path
import pytest
from hypothesis import given, settings, strategies as st
from miniai.corpus import (CORPUS_SOURCES, CorpusNotFoundError, b64_number, clean_anarchism, clean_gcide, clean_wordnet,
                           drop_overlap, find_corpus, load_corpus, read_anarchism, read_gcide, read_wordnet, split_corpus,
                           token_coverage)

ROOT = Path(__file__).resolve().parent.parent
B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'


def b64(n):
    "`n` in dictd's base 64 (the inverse of `b64_number`)"
    s = B64[n % 64]
    while n >= 64: n //= 64; s = B64[n % 64] + s
    return s


GCIDE_ENTRIES = [
    b'00-database-short\n   The Collaborative International Dictionary of English v.0.48\n\n',
    b'Abannation \\Ab`an*na"tion\\, n. [LL. abannatio.]\n   The banishment of one for a year. [Obs.]\n   [1913 Webster]\n\n',
    b'Caf\xe9 \\Ca*f\xe9"\\, n.\n   1. A coffee house; a restaurant.\n      [1913 Webster]\n\n'
    b'            Here is a quotation about it. --Somebody.\n      [1913 Webster]\n\n   Syn: tavern, inn.\n\n']


@pytest.fixture
def corpus_root(tmp_path, monkeypatch):
    "A folder with one subfolder per package, each holding a few texts in that package's format; no other folder searched"
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache'))
    for s, src in CORPUS_SOURCES.items():
        monkeypatch.delenv(src.env_var, raising=False)
        monkeypatch.setitem(CORPUS_SOURCES, s, src._replace(system_dir=tmp_path/'nowhere'/s))
    root = tmp_path/'corpus'
    g = root/'dict-gcide'; g.mkdir(parents=True)
    (g/'gcide.dict.dz').write_bytes(gzip.compress(b''.join(GCIDE_ENTRIES)))
    offs = [sum(map(len, GCIDE_ENTRIES[:i])) for i in range(len(GCIDE_ENTRIES))]
    index = [('00-database-short', 0), ('Abannation', 1), ('Abannition', 1), ('Caf\xe9', 2)]  # two words, one entry
    (g/'gcide.index').write_bytes(''.join(f'{w}\t{b64(offs[i])}\t{b64(len(GCIDE_ENTRIES[i]))}\n' for w, i in index).encode('latin-1'))
    w = root/'wordnet-base'; w.mkdir()
    licence = '  1 This software and database is being provided to you, the LICENSEE, by  \n  2 Princeton University.  \n'
    for pos, line in {'noun': '00001740 03 n 02 entity 0 physical_thing 0 000 | that which exists; "a real entity"  ',
                      'verb': '00001740 29 v 01 breathe 0 001 @ 00002 v 0000 01 + 02 00 | draw air into the lungs  ',
                      'adj': '00001740 00 a 01 able(a) 0 000 | having the means to do something  ',
                      'adv': '00001740 02 r 01 a_cappella 0 000 | without musical accompaniment  '}.items():
        (w/f'data.{pos}').write_text(licence + line + '\n')
    a = root/'anarchism'; a.mkdir()
    (a/'secA1.md.gz').write_bytes(gzip.compress(
        b'# A.1 What is anarchism?\n\nIt is _"a theory"_ [P-J Proudhon, **What is Property**, p. 2] of\n'
        b'the [state](secB2.md).\n\n## A.1.1 What does it mean?\n\n> A quoted\n> passage.\n'))
    (a/'append1.md').write_text('# Appendix\n\nPlain markdown, not gzipped.\n')
    (a/'secAcon.md').write_text('# Section A\n\n[A.1 What is anarchism?](secA1.md)\n')  # a table of contents
    (a/'biblio.md.gz').write_bytes(gzip.compress(b'# Bibliography\n\nBakunin, God and the State.\n'))
    return root


def test_b64_number_round_trip():
    for n in (0, 1, 63, 64, 4095, 4096, 39952321): assert b64_number(b64(n)) == n


def test_gcide_reader_and_cleaner(corpus_root):
    entries = read_gcide(corpus_root/'dict-gcide')
    assert len(entries) == 3  # Abannation and Abannition share an entry
    assert entries[2].startswith('Caf\xe9 ')  # a Windows-1252 byte read as that character
    assert [clean_gcide(e) for e in entries] == [
        '', 'Abannation\nThe banishment of one for a year.', 'Caf\xe9\nA coffee house; a restaurant.\nHere is a quotation about it.']


def test_gcide_cleaner_letter_codes_and_nested_brackets():
    e = 'Aback \\A*back"\\, adv. [Pref. a- + back; AS. on b[ae]c at.]\n   M[=a]ture, c[ae]sura, na[imac]ve, [\'e]lite.\n   [1913 Webster]\n'
    assert clean_gcide(e) == 'Aback\nMature, caesura, naive, elite.'
    assert clean_gcide('Word \\Word\\, n.\n   [1913 Webster]\n') == ''  # no prose at all


def test_wordnet_reader_and_cleaner(corpus_root):
    lines = read_wordnet(corpus_root/'wordnet-base')
    assert len(lines) == 4 and not any(l.startswith('  ') for l in lines)  # the licence is left out
    assert [clean_wordnet(l) for l in lines] == [
        'entity, physical thing: that which exists; "a real entity"', 'breathe: draw air into the lungs',
        'able: having the means to do something', 'a cappella: without musical accompaniment']
    with pytest.raises(ValueError, match='not a WordNet synset line'): clean_wordnet('00001740 03 n 01 entity 0 000 no gloss')


def test_wordnet_word_count_is_hexadecimal():
    words = ' '.join(f'w{i} 0' for i in range(16))
    assert clean_wordnet(f'00000001 03 n 10 {words} 000 | sixteen').split(':')[0].count(',') == 15


def test_anarchism_reader_keeps_prose_files_and_splits_at_headings(corpus_root):
    docs = read_anarchism(corpus_root/'anarchism')
    assert [d.split('\n')[0] for d in docs] == ['# Appendix', '# A.1 What is anarchism?', '## A.1.1 What does it mean?']
    assert [clean_anarchism(d) for d in docs] == ['Appendix\nPlain markdown, not gzipped.',
                                                  'A.1 What is anarchism?\nIt is "a theory" of the state.',
                                                  'A.1.1 What does it mean?\nA quoted passage.']


def folders(root): return {s: root/src.package for s, src in CORPUS_SOURCES.items()}


def test_load_corpus_from_paths_env_cache_and_small_mode(corpus_root, monkeypatch, tmp_path):
    corpus = load_corpus(paths=folders(corpus_root), small=False)
    assert {s: len(d) for s, d in corpus.items()} == {'gcide': 2, 'wordnet': 4, 'anarchism': 3}
    for s, d in folders(corpus_root).items(): monkeypatch.setenv(CORPUS_SOURCES[s].env_var, str(d))
    assert load_corpus(small=False) == corpus
    assert find_corpus('wordnet') == corpus_root/'wordnet-base'
    monkeypatch.delenv('MINIAI_WORDNET')
    (tmp_path/'cache'/'miniai'/'corpus').mkdir(parents=True)
    (corpus_root/'wordnet-base').rename(tmp_path/'cache'/'miniai'/'corpus'/'wordnet-base')
    assert find_corpus('wordnet') == tmp_path/'cache'/'miniai'/'corpus'/'wordnet-base'  # the cache's folder
    assert load_corpus(small=True, every=2) == {'gcide': corpus['gcide'][1:], 'wordnet': corpus['wordnet'][::2],
                                                'anarchism': corpus['anarchism'][::2]}  # raw entries 0 (00-database) and 2


def test_missing_packages_are_named_with_the_apt_command(corpus_root):
    with pytest.raises(CorpusNotFoundError, match=r'(?s)Debian package wordnet-base.*corpus/wordnet-base\n.*nowhere/wordnet\n'
                                                  r'.*sudo apt-get install wordnet-base.*set MINIAI_WORDNET'):
        find_corpus('wordnet')
    with pytest.raises(CorpusNotFoundError, match=r'^3 sources of the corpus are missing .*sudo apt-get install dict-gcide wordnet-base anarchism'):
        load_corpus()
    (corpus_root/'dict-gcide'/'gcide.dict.dz').rename(corpus_root/'gcide.dict.dz')  # one missing: its own message
    with pytest.raises(CorpusNotFoundError, match=r'(?s)^gcide.dict.dz \(the gcide texts, Debian package dict-gcide\) not found.*sudo apt-get install dict-gcide'):
        load_corpus(paths=folders(corpus_root))
    with pytest.raises(ValueError, match="unknown corpus source 'wiki'"): find_corpus('wiki')


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(['a', 'b', 'c']), st.integers(2, 60), min_size=1), st.floats(0.01, 0.6), st.integers(0, 3))
def test_split_is_deterministic_and_holds_out_each_source(sizes, pct, seed):
    corpus = {s: [f'{s}{i}' for i in range(n)] for s, n in sizes.items()}
    try: train, valid = split_corpus(corpus, pct, seed)
    except ValueError as e:
        assert 'leaves none to train on' in str(e)
        return
    assert (train, valid) == split_corpus(corpus, pct, seed)
    assert sorted(train + valid) == sorted((s, d) for s, ds in corpus.items() for d in ds)
    held = Counter(s for s, _ in valid)
    assert held == {s: max(1, round(pct * n)) for s, n in sizes.items()}


def test_split_changes_with_the_seed_and_refuses_bad_shares():
    corpus = {'a': [str(i) for i in range(200)]}
    assert split_corpus(corpus, seed=0) != split_corpus(corpus, seed=1)
    with pytest.raises(ValueError, match='must be between 0 and 1'): split_corpus(corpus, valid_pct=0)


def test_no_fortune_survives_a_planted_overlap():
    fortunes = ['Absinthe makes the tart grow fonder.',
                'I have always been a great believer in the ability of people to make their own lives.\n\t\t-- Someone']
    corpus = {'anarchism': ['Title\nSome prose. As someone wrote, "I have always been a great believer in the ability of '
                            'people"... and more.\nAnother paragraph, kept.'],
              'wordnet': ['tart: a pie; "absinthe makes the tart grow fonder"', 'pie: a dish'],
              'gcide': ['Fonder\nMore fond; absinthe makes it grow.']}
    kept, hits = drop_overlap(corpus, fortunes)
    assert kept == {'anarchism': ['Title\nAnother paragraph, kept.'], 'wordnet': ['pie: a dish'],
                    'gcide': corpus['gcide']}
    assert sorted((h.source, h.doc, h.text) for h in hits) == [('anarchism', 0, 1), ('wordnet', 0, 0)]
    assert drop_overlap(kept, fortunes)[1] == []


def test_token_coverage_counts_by_occurrence():
    counts = Counter({'the': 90, 'cat': 9, 'zyzzyva': 1, 'xxmaj': 50})
    assert token_coverage(counts, ['the', 'cat']) == 0.99
    assert token_coverage(Counter(), ['the']) == 0


# ---- the data step (tools/get_data.sh) ------------------------------------------------------------------------------

def _dry_run(tmp_path, **env):
    "tools/get_data.sh --dry-run as root (a fake `id`), with Fashion-MNIST and the fortunes present in fake folders"
    b = tmp_path/'bin'; b.mkdir(exist_ok=True)
    for name, body in (('id', 'echo 0'), ('apt-get', 'exit 0')):
        (b/name).write_text(f'#!/bin/sh\n{body}\n'); (b/name).chmod(0o755)
    fm, fo = tmp_path/'fm', tmp_path/'fo'
    fm.mkdir(exist_ok=True); fo.mkdir(exist_ok=True)
    (fm/'train-images-idx3-ubyte.gz').touch(); (fo/'computers').touch()
    env = dict(PATH=f'{b}:{os.environ["PATH"]}', HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path/'cache'),
               MINIAI_FMNIST_SYSTEM_DIR=str(fm), MINIAI_FORTUNES_SYSTEM_DIR=str(fo), **env)
    r = subprocess.run(['/bin/bash', str(ROOT/'tools'/'get_data.sh'), '--dry-run'], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_get_data_installs_the_corpus_packages_when_missing(tmp_path):
    out = _dry_run(tmp_path, MINIAI_CORPUS_SYSTEM_ROOT=str(tmp_path/'empty'))
    assert 'installing dict-gcide wordnet-base anarchism (Debian packages)' in out
    for p in ('dict-gcide', 'wordnet-base', 'anarchism'): assert f'apt-get install -y -q {p}' in out


def test_get_data_finds_the_corpus_where_the_loader_looks(tmp_path, corpus_root):
    env = {CORPUS_SOURCES[s].env_var: str(d) for s, d in folders(corpus_root).items() if s != 'anarchism'}
    (tmp_path/'cache'/'miniai'/'corpus').mkdir(parents=True)
    (corpus_root/'anarchism').rename(tmp_path/'cache'/'miniai'/'corpus'/'anarchism')  # one in the cache
    assert _dry_run(tmp_path, MINIAI_CORPUS_SYSTEM_ROOT=str(tmp_path/'empty'), **env) == ''
