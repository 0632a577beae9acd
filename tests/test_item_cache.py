"""Lesson 15's `cache_items` and 15c's `item_cache`: items decoded once into a memory-mapped file.

A cache must never give other tensors than decoding: a hit equals decoding, a changed file (size, modification time) or a
changed transform rebuilds, a damaged file is rebuilt with a warning, `__getitems__` equals fetching item by item, and a
random transform still runs per item per epoch. Every test builds its own tiny folder and cache folder under `tmp_path`.
"""
import os, pickle, random, warnings
from pathlib import Path
import numpy as np
import pytest, torch
from PIL import Image
from torch.utils.data import DataLoader
from miniai.datablock import (CategoryProcessor, ImageList, ItemError, ItemList, LabeledData, ResizeFixed, SplitData, Transform,
                              cache_items, cached_tfms, grandparent_splitter, label_by_func, make_grey, make_rgb, parent_labeler,
                              to_byte_tensor, to_dls, to_float_tensor)
from miniai.item_cache import CacheDamagedWarning, item_digests, tfm_key

TFMS = [make_grey, ResizeFixed(8), to_byte_tensor, to_float_tensor]

def folder(root, n=10, sizes=((10, 9), (12, 9), (8, 8))):
    rng = np.random.default_rng(0)
    for split in ('train', 'valid'):
        for i in range(n):
            d = root/split/f'c{i % 2}'
            d.mkdir(parents=True, exist_ok=True)
            w, h = sizes[i % len(sizes)]
            Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(d/f'{i}.png')
    return root

def labelled(root, tfms=TFMS, **kw):
    il = ImageList.from_files(root, tfms=tfms, **kw)
    return label_by_func(SplitData.split_by_func(il, grandparent_splitter), parent_labeler, proc_y=CategoryProcessor())

@pytest.fixture
def tree(tmp_path): return folder(tmp_path/'images'), tmp_path/'cache'

def statuses(ll): return ll.train.x.cache.status, ll.valid.x.cache.status

def test_hit_equals_decoding(tree):
    root, cf = tree
    plain = labelled(root)
    built = cache_items(labelled(root), cf)
    loaded = cache_items(labelled(root), cf)
    assert statuses(built) == ('built', 'built') and statuses(loaded) == ('loaded', 'loaded')
    for side in ('train', 'valid'):
        p, c = getattr(plain, side), getattr(loaded, side)
        for i in range(len(p)):
            xp, yp = p[i]
            xc, yc = c[i]
            assert xc.dtype == torch.float32 and torch.equal(xc, xp) and yc == yp
    assert sorted(f.suffix for f in cf.iterdir()) == ['.json', '.json', '.npy', '.npy']

def test_getitems_equals_per_item(tree):
    root, cf = tree
    for ll in (labelled(root), cache_items(labelled(root), cf)):  # without and with a cache
        idxs = [4, 0, 9, 4, 2]
        batch = ll.train.__getitems__(idxs)
        one = [ll.train[i] for i in idxs]
        assert len(batch) == len(one)
        for (xb, yb), (xo, yo) in zip(batch, one): assert torch.equal(xb, xo) and yb == yo
        # and through a DataLoader, which calls __getitems__: the same batches as indexing one by one
        dl = DataLoader(ll.valid, batch_size=4)
        xs, ys = zip(*[ll.valid[i] for i in range(len(ll.valid))])
        xb, yb = next(iter(dl))
        assert torch.equal(xb, torch.stack(xs[:4])) and yb.tolist() == list(ys[:4])

def test_changed_file_rebuilds(tree):
    root, cf = tree
    ll = cache_items(labelled(root), cf)
    f = ll.train.x.items[3]
    st = os.stat(f)
    Image.fromarray(np.full((9, 10), 7, np.uint8)).save(f)  # other pixels
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))         # with the old modification time: size and change time differ
    ll2 = cache_items(labelled(root), cf)
    assert statuses(ll2) == ('built', 'loaded')
    assert torch.equal(ll2.train[3][0], torch.full((1, 8, 8), 7/255))
    # a new modification time (and maybe size)
    a = np.asarray(Image.open(f)).copy(); a[0, 0] = 8
    Image.fromarray(a).save(f)
    ll3 = cache_items(labelled(root), cf)
    assert statuses(ll3)[0] == 'built' and ll3.train[3][0][0, 0, 0] != ll2.train[3][0][0, 0, 0]
    assert len(list(cf.iterdir())) == 4  # rebuilt in place: still one pair of files per list

def test_digests_see_size_and_mtime(tmp_path):
    f = tmp_path/'a.png'; f.write_bytes(b'x' * 10)
    names, stamps = item_digests([f])
    os.utime(f, ns=(0, 10**9))
    assert item_digests([f]) == (names, item_digests([f])[1]) and item_digests([f])[1] != stamps
    stamps2 = item_digests([f])[1]
    f.write_bytes(b'y' * 11); os.utime(f, ns=(0, 10**9))
    assert item_digests([f])[1] != stamps2

def test_changed_transform_rebuilds(tree):
    root, cf = tree
    a = cache_items(labelled(root), cf)
    b = cache_items(labelled(root, [make_grey, ResizeFixed(6), to_byte_tensor, to_float_tensor]), cf)
    assert statuses(b) == ('built', 'built') and b.train[0][0].shape == (1, 6, 6)
    c = cache_items(labelled(root), cf)  # back to 8x8: rebuilt, not the 6x6 pixels
    assert statuses(c) == ('built', 'built') and torch.equal(c.train[0][0], a.train[0][0])
    def inv(im): return Image.eval(im, lambda v: 255 - v)
    inv.deterministic = True
    k1 = tfm_key(inv)
    d = cache_items(labelled(root, [make_grey, ResizeFixed(8), inv, to_byte_tensor]), cf)
    def inv(im): return Image.eval(im, lambda v: 250 - v)  # same name, other code
    inv.deterministic = True
    assert tfm_key(inv) != k1
    e = cache_items(labelled(root, [make_grey, ResizeFixed(8), inv, to_byte_tensor]), cf)
    assert statuses(e) == ('built', 'built')
    assert torch.equal(e.train[0][0].int(), d.train[0][0].int() - 5)

def test_changed_tfms_after_caching_not_used(tree):
    root, cf = tree
    ll = cache_items(labelled(root), cf)
    ll.train.x.tfms = [make_grey, ResizeFixed(5), to_byte_tensor]  # the cache does not fit these: the file is read
    x = ll.train[0][0]
    assert x.shape == (1, 5, 5) and x.dtype == torch.uint8
    assert ll.train.__getitems__([0])[0][0].shape == (1, 5, 5)

@pytest.mark.parametrize('damage', ['flip', 'truncate', 'json', 'no-json'])
def test_damaged_cache_rebuilt(tree, damage):
    root, cf = tree
    good = cache_items(labelled(root), cf)
    npy = good.train.x.cache.path
    if damage == 'flip': b = bytearray(npy.read_bytes()); b[-1] ^= 0xFF; npy.write_bytes(bytes(b))
    elif damage == 'truncate': npy.write_bytes(npy.read_bytes()[:100])
    elif damage == 'json': npy.with_suffix('.json').write_text('{"version": 1, "ke')
    else: npy.with_suffix('.json').unlink()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        ll = cache_items(labelled(root), cf)
    assert statuses(ll) == ('built', 'loaded')
    assert [x.category for x in w] == ([] if damage == 'no-json' else [CacheDamagedWarning])
    plain = labelled(root)
    for i in range(len(plain.train)): assert torch.equal(ll.train[i][0], plain.train[i][0])

class RandomFlip(Transform):
    order = 15
    def __call__(self, im): return im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if random.random() < 0.5 else im

class RandomNoise(Transform):
    order = 40  # on the float tensor, after the cached part
    def __call__(self, t): return t + torch.rand_like(t)

@pytest.mark.parametrize('aug', [RandomFlip, RandomNoise])
def test_random_transforms_run_every_epoch(tree, aug):
    root, cf = tree
    ll = cache_items(labelled(root, TFMS + [aug()]), cf)
    c = ll.train.x.cache
    assert any(isinstance(f, aug) for f in c.rest)  # not cached: run on every read
    assert c.kind == ('pil' if aug is RandomFlip else 'tensor')
    dl = DataLoader(ll.train, batch_size=len(ll.train))
    random.seed(0); torch.manual_seed(0); e1 = next(iter(dl))[0]
    random.seed(1); torch.manual_seed(1); e2 = next(iter(dl))[0]
    assert not torch.equal(e1, e2)
    # the same seed, the same epoch: the cache changes nothing about which random numbers are drawn
    plain = labelled(root, TFMS + [aug()])
    random.seed(0); torch.manual_seed(0); p1 = next(iter(DataLoader(plain.train, batch_size=len(plain.train))))[0]
    assert torch.equal(e1, p1)

def test_cached_tfms_stops_at_unmarked(tree):
    root, cf = tree
    il = ImageList.from_files(root, tfms=TFMS)
    assert cached_tfms(il) == 3  # make_grey, ResizeFixed, to_byte_tensor; not to_float_tensor (floats)
    def mine(im): return im
    il2 = ImageList.from_files(root, tfms=[make_grey, ResizeFixed(8), mine, to_byte_tensor])  # mine: order 0, before the resize
    assert cached_tfms(il2) == 1  # make_grey only: images of several sizes here, so they cannot be cached
    with pytest.raises(ValueError, match='items of one shape'): cache_items(il2, cf)
    with pytest.raises(ValueError, match='not 8-bit pixels'): cache_items(ItemList(list(range(5)), tfms=[lambda o: o * 2]), cf)

def test_bad_item_with_skip_bad(tmp_path):
    root = folder(tmp_path/'images', sizes=((8, 8),))
    f = root/'train'/'c0'/'2.png'
    f.write_bytes(f.read_bytes()[:60])  # truncated: the header reads, the pixels do not
    ll = labelled(root, [make_grey, to_byte_tensor, to_float_tensor], skip_bad=True)
    with pytest.raises(ItemError): cache_items(labelled(root, [make_grey, to_byte_tensor, to_float_tensor]), tmp_path/'c1')
    with warnings.catch_warnings(record=True):
        warnings.simplefilter('always')
        cache_items(ll, tmp_path/'c2')
        i = ll.train.x.items.index(f)
        assert i in ll.train.x.cache.bad
        with pytest.raises(ItemError, match='could not be read when the cache was built'): ll.train.x[i]
        x, y = ll.train[i]  # read_or_substitute: the next item that reads
        assert torch.equal(x, ll.train[i + 1][0])
        assert len(ll.train.__getitems__([i, 0])) == 2

def test_pickled_list_maps_the_file_again(tree):
    root, cf = tree
    ll = cache_items(labelled(root), cf)
    ll2 = pickle.loads(pickle.dumps(ll))
    assert ll2.train.x.cache._array is None
    assert torch.equal(ll2.train[1][0], ll.train[1][0])

def test_to_dls_with_cache_same_batches(tree):
    root, cf = tree
    plain, cached = labelled(root), cache_items(labelled(root), cf)
    for a, b in zip(to_dls(plain, bs=4).valid, to_dls(cached, bs=4).valid):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])

def test_subclass_getitem_still_used_by_dataloader(tree):
    root, _ = tree
    class Doubled(LabeledData):
        def __getitem__(self, idx): x, y = super().__getitem__(idx); return x * 2, y
    ll = labelled(root)
    d = Doubled(ll.train.x, ll.train.y)
    xb, _ = next(iter(DataLoader(d, batch_size=3)))
    assert torch.equal(xb, torch.stack([ll.train[i][0] * 2 for i in range(3)]))

def test_list_pickled_without_cache_attribute(tree):
    root, _ = tree
    il = ImageList.from_files(root, tfms=TFMS)
    del il.cache  # as a list pickled before caches existed
    assert torch.equal(il.getitems([1])[0], ImageList.from_files(root, tfms=TFMS)[1])
