"""The cached DatasetDict of miniai.datasets under concurrent first use and damage, which a notebook cannot show."""
import os, shutil, subprocess, sys, textwrap
from pathlib import Path
import pytest
import miniai.datasets as DS

@pytest.fixture
def cache(private_cache): return private_cache/'datasets'

@pytest.mark.slow
def test_concurrent_first_build(cache, fmnist_path):
    "Three processes build the small DatasetDict into one empty cache at once: all succeed, one complete copy, no temp folders."
    code = textwrap.dedent(f"""
        import miniai.datasets as DS
        dd = DS.fashion_mnist_dd(small=True, path={str(fmnist_path)!r})
        assert (len(dd['train']), len(dd['test'])) == (6000, 1000), dd
        assert dd['train'].features == DS.fmnist_features()
    """)
    env = dict(os.environ, XDG_CACHE_HOME=str(cache.parent.parent))
    procs = [subprocess.Popen([sys.executable, '-c', code], env=env, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    assert sorted(p.name for p in cache.iterdir()) == [DS.fmnist_dd_dir(True).name]
    dd = DS.fashion_mnist_dd(small=True)
    assert len(dd['train']) == 6000 and dd['test'].features['label'].int2str(9) == 'Ankle boot'

def test_small_and_full_never_mix(cache, fmnist_path):
    "A small DatasetDict in the cache is never served as the full one, nor the full one as the small one."
    assert len(DS.fashion_mnist_dd(small=True, path=fmnist_path)['train']) == 6000
    full = DS.fashion_mnist_dd(small=False, path=fmnist_path)
    assert (len(full['train']), len(full['test'])) == (60000, 10000)
    assert len(DS.fashion_mnist_dd(small=True)['train']) == 6000  # both now cached side by side
    assert sorted(p.name for p in cache.iterdir()) == sorted({DS.fmnist_dd_dir(True).name, DS.fmnist_dd_dir(False).name})

def test_damaged_cache_clear_error(cache, fmnist_path):
    d = DS.fmnist_dd_dir(True)
    DS.fashion_mnist_dd(small=True, path=fmnist_path)
    shutil.rmtree(d/'train')
    with pytest.raises(RuntimeError, match='Delete that folder') as e: DS.fashion_mnist_dd(small=True)
    assert str(d) in str(e.value)
    shutil.rmtree(d)
    assert len(DS.fashion_mnist_dd(small=True, path=fmnist_path)['train']) == 6000  # rebuilt
