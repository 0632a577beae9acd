"""Faults of miniai.data: missing files, damaged files, bad downloads, small mode, concurrent first use."""
import gzip, os, shutil, subprocess, sys, textwrap
from pathlib import Path
import pytest, torch
import miniai.data as D

REAL = D.find_fmnist(download=False)  # CI installs the Debian package; the suite needs the real files

@pytest.fixture
def isolated(tmp_path, monkeypatch):
    "No data anywhere: empty cache, no $MINIAI_DATA, no system folder."
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache'))
    monkeypatch.delenv('MINIAI_DATA', raising=False)
    monkeypatch.setattr(D, 'SYSTEM_DATA_DIR', tmp_path/'no-system-data')
    return tmp_path

def _mirror(tmp_path, name='mirror', tamper=None):
    "A local folder served by file:// URLs holding the four .gz files, optionally with one tampered."
    m = tmp_path/name; m.mkdir()
    for n in D.FMNIST_FILES.values():
        data = D._gunzip(D.fmnist_file(REAL, n).read_bytes(), n)
        if tamper == n: data = data[:-1] + bytes([data[-1] ^ 1])  # one bit flipped: same shape, other content
        (m/f'{n}.gz').write_bytes(gzip.compress(data, compresslevel=1))
    return m.as_uri() + '/'

def _files(d): return sorted(p.name for p in Path(d).rglob('*')) if Path(d).exists() else []

def test_missing_files_clear_error_nothing_written(isolated):
    with pytest.raises(D.DataNotFoundError) as e:
        D.find_fmnist(mirrors=((isolated/'offline').as_uri() + '/',))
    msg = str(e.value)
    for want in ('dataset-fashion-mnist', 'MINIAI_DATA', 'go online', str(isolated/'cache'/'miniai'/'fashion-mnist'),
                 'train-images-idx3-ubyte.gz'):
        assert want in msg, f'{want!r} missing from: {msg}'
    assert not (isolated/'cache').exists(), 'a failed search must not write anything'

def test_no_download_when_asked(isolated):
    with pytest.raises(D.DataNotFoundError, match='apt-get install dataset-fashion-mnist'):
        D.find_fmnist(download=False)

def test_search_order(isolated, monkeypatch):
    a, b = isolated/'a', isolated/'b'
    for d in (a, b):
        d.mkdir()
        for n in D.FMNIST_FILES.values(): (d/n).write_bytes(b'')
    monkeypatch.setenv('MINIAI_DATA', str(b))
    assert D.find_fmnist(a) == a
    assert D.find_fmnist() == b
    (b/'t10k-labels-idx1-ubyte').unlink()  # an incomplete folder does not count
    monkeypatch.setattr(D, 'SYSTEM_DATA_DIR', REAL)
    assert D.find_fmnist() == REAL

def test_find_data_order_fetch_and_error(tmp_path, monkeypatch):
    "The one finder every data set uses: argument, environment variable, cache, system folder; then fetch; then the error"
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache'))
    has = lambda d: (d/'ok').is_file()
    dirs = {k: tmp_path/k for k in ('arg', 'env', 'sys')} | {'cache': tmp_path/'cache'/'miniai'/'things'}
    for d in dirs.values(): d.mkdir(parents=True); (d/'ok').write_text('')
    monkeypatch.setenv('MINIAI_THINGS', str(dirs['env']))
    find = lambda path=None, **kw: D.find_data('Things', has, path, 'MINIAI_THINGS', 'things', dirs['sys'], **kw)
    for k in ('arg', 'env', 'cache', 'sys'):
        assert find(dirs['arg']) == dirs[k]
        (dirs[k]/'ok').unlink()
    assert find(fetch=lambda: tmp_path/'fetched') == tmp_path/'fetched'
    class ThingsNotFound(D.DataNotFoundError): pass
    def offline(): raise D.DataNotFoundError('no network')
    with pytest.raises(ThingsNotFound) as e: find(dirs['arg'], fetch=offline, help='Install things.', err=ThingsNotFound)
    assert str(e.value) == ('Things not found in any of:\n  ' + '\n  '.join(str(dirs[k]) for k in ('arg', 'env', 'cache', 'sys'))
                            + '\nand the download failed: no network\nInstall things.')
    monkeypatch.delenv('MINIAI_THINGS')
    with pytest.raises(D.DataNotFoundError) as e: D.find_data('Things', has)  # no folders given: none searched
    assert str(e.value).startswith('Things not found in any of:')

def test_truncated_file(tmp_path):
    good = D.fmnist_file(REAL, 't10k-labels-idx1-ubyte')
    raw = D._gunzip(good.read_bytes(), good)
    cut = tmp_path/'t10k-labels-idx1-ubyte'; cut.write_bytes(raw[:5000])
    with pytest.raises(ValueError, match='truncated') as e: D.read_idx(cut)
    assert str(cut) in str(e.value) and '10,000' in str(e.value)
    cutgz = tmp_path/'labels.gz'; cutgz.write_bytes(good.read_bytes()[:-20])
    with pytest.raises(ValueError, match='gzip stream') as e: D.read_idx(cutgz)
    assert str(cutgz) in str(e.value)
    short_hdr = tmp_path/'hdr'; short_hdr.write_bytes(raw[:6])
    with pytest.raises(ValueError, match='header'): D.read_idx(short_hdr)

def test_wrong_magic_number(tmp_path):
    raw = D._gunzip(D.fmnist_file(REAL, 't10k-labels-idx1-ubyte').read_bytes(), 'x')
    for bad, msg in ((b'\x01\x00' + raw[2:], 'not an IDX file'), (raw[:2] + b'\x0d' + raw[3:], 'element type 0x0d'),
                     (raw[:3] + b'\x00' + raw[4:], '0 dimensions'), (b'{"json": 1}', 'not an IDX file')):
        fn = tmp_path/'bad.idx'; fn.write_bytes(bad)
        with pytest.raises(ValueError, match=msg) as e: D.read_idx(fn)
        assert str(fn) in str(e.value)

def test_download_verifies_and_falls_back(isolated):
    bad = _mirror(isolated, 'bad', tamper='train-labels-idx1-ubyte')
    good = _mirror(isolated, 'good')
    d = D.find_fmnist(mirrors=(bad, good))
    assert d == isolated/'cache'/'miniai'/'fashion-mnist'
    assert _files(d) == sorted(f'{n}.gz' for n in D.FMNIST_FILES.values())
    assert all(D._verified(p) for p in d.iterdir())
    torch.testing.assert_close(D.load_fmnist(small=True).y_train, D.load_fmnist(REAL, small=True).y_train)

def test_checksum_mismatch_leaves_nothing(isolated):
    bad = _mirror(isolated, 'bad', tamper='t10k-images-idx3-ubyte')
    with pytest.raises(D.DataNotFoundError, match='checksum mismatch'): D.find_fmnist(mirrors=(bad,))
    cache = isolated/'cache'/'miniai'/'fashion-mnist'
    assert 't10k-images-idx3-ubyte.gz' not in _files(cache)
    assert not [f for f in _files(cache) if f.endswith('.tmp')], 'temporary files left behind'

def test_small_mode_balanced_and_fixed(monkeypatch):
    monkeypatch.setenv('MINIAI_SMALL', '1')
    a, b = D.load_fmnist(REAL), D.load_fmnist(REAL)
    assert (len(a.x_train), len(a.x_test)) == (6000, 1000)
    assert a.y_train.bincount().tolist() == [600]*10 and a.y_test.bincount().tolist() == [100]*10
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    x, y, xv, yv = D.load_fmnist_flat(REAL)
    assert x.shape == (6000, 784) and xv.shape == (1000, 784) and x.dtype == torch.float32
    assert torch.equal(x, a.x_train.reshape(6000, -1).float()/255)
    monkeypatch.setenv('MINIAI_SMALL', '0')
    assert len(D.load_fmnist(REAL).x_train) == 60000

def test_small_mode_value_checked(monkeypatch):
    monkeypatch.setenv('MINIAI_SMALL', 'yes please')
    with pytest.raises(ValueError, match="MINIAI_SMALL='yes please'"): D.small_mode()

def test_concurrent_first_use(isolated):
    "Four processes download into one empty cache at once: all succeed, every file verifies, no temp files."
    mirror = _mirror(isolated)
    code = textwrap.dedent(f"""
        import miniai.data as D
        D.download_fmnist(mirrors=({mirror!r},))
        x = D.load_fmnist(small=False)
        assert len(x.x_train) == 60000
    """)
    env = dict(os.environ, XDG_CACHE_HOME=str(isolated/'cache'), MINIAI_DATA='')
    procs = [subprocess.Popen([sys.executable, '-c', code], env=env, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    cache = isolated/'cache'/'miniai'/'fashion-mnist'
    assert _files(cache) == sorted(f'{n}.gz' for n in D.FMNIST_FILES.values())
    assert all(D._verified(p) for p in cache.iterdir())
