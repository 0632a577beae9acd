"""The data block API (lesson 15 with its appendix 15a) on bad input, and properties of its splitters and processors.

Every test makes its own small folder of images (varied sizes and modes) under pytest's `tmp_path`; nothing
reads the Fashion-MNIST tree (tests/test_imagefiles.py has the cases of a real collection). Hypothesis tests draw a bounded number of cases so the file stays fast.
"""
import os, pickle, random
from functools import partial
from pathlib import Path
import numpy as np
import pytest, torch
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image
from miniai.datablock import (CategoryProcessor, ImageList, ItemError, ItemList, LabeledData, SplitData, UnknownLabelError,
                              get_files, grandparent_splitter, label_by_func, make_grey, make_rgb, parent_labeler, random_splitter,
                              split_by_func, to_byte_tensor, to_dls, to_float_tensor)
from miniai.imagefiles import DONE_MARKER, write_fmnist_pngs

def bounded(n): return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

RGB_TFMS = [make_rgb, to_byte_tensor, to_float_tensor]

def save(fn, im):
    fn = Path(fn)
    fn.parent.mkdir(parents=True, exist_ok=True)
    im.save(fn)
    return fn

def rand_im(mode='RGB', size=(6, 5), seed=0):
    rng = np.random.default_rng(seed)
    if mode == 'RGB': return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8)).convert(mode)

def make_tree(root, classes=('cat', 'dog'), n=3, sizes=((6, 5), (9, 9), (4, 12))):
    "train/<class>/<i>.png and valid/<class>/<i>.png, images of varied sizes"
    for split in ('train', 'valid'):
        for c in classes:
            for i in range(n): save(root/split/c/f'{i}.png', rand_im('RGB', sizes[i % len(sizes)], seed=i))
    return root

def labelled(root, tfms=RGB_TFMS, **kw):
    il = ImageList.from_files(root, tfms=tfms)
    sd = SplitData.split_by_func(il, grandparent_splitter)
    return label_by_func(sd, parent_labeler, proc_y=CategoryProcessor(), **kw)

# ---------------------------------------------------------------- the pipeline on a tiny tree

def test_pipeline_varied_sizes_and_modes(tmp_path):
    make_tree(tmp_path)
    for mode in ('L', 'P', 'CMYK', 'LA', 'RGBA', 'I;16'):
        im = rand_im('L', (7, 3), seed=5) if mode != 'CMYK' else rand_im('RGB', (7, 3)).convert('CMYK')
        if mode == 'I;16': im = Image.fromarray(np.full((3, 7), 51400, dtype=np.uint16))
        elif mode != 'CMYK': im = im.convert(mode)
        save(tmp_path/'train'/'cat'/f'm{mode.replace(";", "")}.{"tif" if mode in ("CMYK", "I;16") else "png"}', im)
    from miniai.datablock import ResizeFixed
    ll = labelled(tmp_path, tfms=RGB_TFMS + [ResizeFixed(8)])
    assert ll.train.proc_y[0].vocab == ['cat', 'dog']
    xs = [ll.train[i][0] for i in range(len(ll.train))]
    assert all(x.shape == (3, 8, 8) and x.dtype == torch.float32 and 0 <= x.min() <= x.max() <= 1 for x in xs)
    i16 = [i for i, f in enumerate(ll.train.x.items) if f.stem == 'mI16'][0]
    assert abs(ll.train.x_obj(i16).mean().item() - round(51400 / 257) / 255) < 0.01  # scaled, not clipped to white
    xb, yb = next(iter(to_dls(ll, bs=4).valid))
    assert xb.shape == (6, 3, 8, 8) and yb.tolist() == [0, 0, 0, 1, 1, 1]

def test_batching_varied_sizes_without_resize_names_the_shapes(tmp_path):
    ll = labelled(make_tree(tmp_path))
    with pytest.raises(RuntimeError, match='stack expects each tensor to be equal size'):
        next(iter(to_dls(ll, bs=6).valid))

# ---------------------------------------------------------------- bad input: clear errors

def test_folder_without_images(tmp_path):
    save(tmp_path/'.hidden.png', rand_im())  # hidden: not seen
    for f in ['a.txt', 'b.txt', 'c.csv', 'sub/d.TXT']:
        (tmp_path/f).parent.mkdir(exist_ok=True)
        (tmp_path/f).write_text('x')
    with pytest.raises(FileNotFoundError) as e: ImageList.from_files(tmp_path)
    msg = str(e.value)
    assert str(tmp_path) in msg and '.png' in msg and '.jpg' in msg and 'saw 4 other files' in msg and '3 .txt' in msg
    with pytest.raises(FileNotFoundError, match=r'Looked for the extensions \.webp'):
        ImageList.from_files(tmp_path, extensions=['WEBP'])

def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='is not a folder'): get_files(tmp_path/'nope')
    (tmp_path/'f').write_text('')
    with pytest.raises(NotADirectoryError, match='is not a folder'): get_files(tmp_path/'f')

def test_truncated_image_named_with_index_when_read(tmp_path):
    "A truncated file has a whole header, so the listing cannot see it: reading it fails, naming the file and its index"
    make_tree(tmp_path)
    bad = tmp_path/'train'/'dog'/'1.png'
    data = bad.read_bytes()
    bad.write_bytes(data[:len(data) // 2])
    ll = labelled(tmp_path)
    idx = ll.train.x.items.index(bad)
    with pytest.raises(ItemError) as e: ll.train[idx]
    assert f'ImageList[{idx}]' in str(e.value) and str(bad) in str(e.value)
    ll.train[idx - 1]  # the others still read
    with pytest.raises(ItemError, match=str(bad)):  # also through a DataLoader
        list(torch.utils.data.DataLoader(ll.train, batch_size=6))

@pytest.mark.parametrize('damage', ['garbage', 'empty'])
def test_file_that_is_not_an_image_named_at_listing(tmp_path, damage):
    make_tree(tmp_path)
    bad = tmp_path/'train'/'dog'/'1.png'
    bad.write_bytes({'garbage': b'not a png at all', 'empty': b''}[damage])
    with pytest.raises(ValueError, match=r"1 of 12 files in .* cannot be used\. 1 not an image PIL can open: train/dog/1\.png"):
        ImageList.from_files(tmp_path)

def test_negative_and_out_of_range_index(tmp_path):
    ll = labelled(make_tree(tmp_path))
    n = len(ll.train.x)
    assert torch.equal(ll.train.x[-1], ll.train.x[n - 1])
    with pytest.raises(IndexError): ll.train.x[n]

@pytest.mark.parametrize('mode', ['CMYK', 'I;16', 'P-transparent', 'F'])
def test_modes_the_tensor_conversion_cannot_take(tmp_path, mode):
    if mode == 'CMYK': im = rand_im('RGB').convert('CMYK')
    elif mode == 'I;16': im = Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16))
    elif mode == 'F': im = Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32))
    else:
        im = Image.new('P', (4, 4), 1); im.putpalette([0, 0, 0, 255, 255, 255]); im.info['transparency'] = 1
    with pytest.raises(ValueError, match='Put make_rgb or make_grey before it'): to_byte_tensor(im)
    if mode == 'F':
        with pytest.raises(ValueError, match="scale it to 0-255"): make_rgb(im)
        return
    t = to_byte_tensor(make_rgb(im))
    assert t.shape == (3,) + im.size[::-1] and t.dtype == torch.uint8
    if mode == 'I;16': assert t.min() == 255  # scaled from 65535, not clipped
    if mode == 'P-transparent': assert t.min() == 255  # transparent: on the white background
    assert to_byte_tensor(make_grey(im)).shape == (1,) + im.size[::-1]

def test_mode_error_through_the_pipeline_names_file_and_index(tmp_path):
    make_tree(tmp_path)
    cmyk = save(tmp_path/'train'/'cat'/'z.jpg', rand_im('RGB').convert('CMYK'))
    il = ImageList.from_files(tmp_path, tfms=[to_byte_tensor])
    i = il.items.index(cmyk)
    with pytest.raises(ItemError, match=rf"ImageList\[{i}\] \({cmyk}\): ValueError: .*mode 'CMYK'"): il[i]

def test_validation_label_never_seen_in_training(tmp_path):
    make_tree(tmp_path)
    only_valid = save(tmp_path/'valid'/'cow'/'0.png', rand_im())
    with pytest.raises(UnknownLabelError) as e: labelled(tmp_path)
    assert "'cow'" in str(e.value) and str(only_valid) in str(e.value) and "['cat', 'dog']" in str(e.value)

def test_empty_class_folder(tmp_path):
    make_tree(tmp_path)
    (tmp_path/'train'/'emu').mkdir()
    with pytest.raises(ValueError, match=r'train/emu holds no images, while 2 folders beside it do'):
        ImageList.from_files(tmp_path)
    (tmp_path/'train'/'emu'/'notes.txt').write_text('no images here')  # files that are not images do not count
    with pytest.raises(ValueError, match=r'emu holds no images \(it holds 1 \.txt, left out\)'), pytest.warns(UserWarning, match='1 .txt'):
        ImageList.from_files(tmp_path)
    (tmp_path/'train'/'.cache').mkdir()  # hidden folders are not classes
    (tmp_path/'train'/'emu'/'notes.txt').unlink(); (tmp_path/'train'/'emu').rmdir()
    assert len(ImageList.from_files(tmp_path)) == 12

def test_splitter_that_puts_nothing_in_validation(tmp_path):
    il = ImageList.from_files(make_tree(tmp_path))
    with pytest.raises(ValueError) as e: SplitData.split_by_func(il, partial(grandparent_splitter, valid_name='val'))
    msg = str(e.value)
    assert 'put nothing in validation' in msg and '6 went to training, 0 to validation and 6 were left out' in msg
    assert "['train', 'valid']" in msg  # the folder names it could have used
    with pytest.raises(ValueError, match='put nothing in training'): SplitData.split_by_func(il, lambda o: True)
    with pytest.raises(ValueError, match='put nothing in validation'): SplitData.split_by_func(il, random_splitter(0.))
    with pytest.raises(ValueError, match="gave 'yes'"): SplitData.split_by_func(il, lambda o: 'yes')

def test_get_files_symlink_loop_and_hidden(tmp_path):
    make_tree(tmp_path)
    (tmp_path/'train'/'cat'/'up').symlink_to(tmp_path, target_is_directory=True)
    (tmp_path/'.thumbs').mkdir(); save(tmp_path/'.thumbs'/'x.png', rand_im())
    save(tmp_path/'train'/'cat'/'.x.png', rand_im())
    save(tmp_path/'train'/'cat'/'UPPER.PNG', rand_im())
    fs = get_files(tmp_path, ['.png'])
    assert len(fs) == len(set(fs)) == 13
    assert tmp_path/'train'/'cat'/'UPPER.PNG' in fs and not any('.thumbs' in str(f) or f.name.startswith('.') for f in fs)

def test_png_tree_is_atomic(tmp_path, monkeypatch):
    "An interrupted write leaves no tree under the final name; a finished one is reused; a foreign folder is refused."
    import miniai.imagefiles as db
    from miniai.data import FashionMNIST
    fm = FashionMNIST(torch.zeros(4, 3, 3, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]),
                      torch.zeros(2, 3, 3, dtype=torch.uint8), torch.tensor([1, 0]), ['T-shirt/top', 'Trouser'])
    monkeypatch.setattr(db, 'load_fmnist', lambda path, small: fm)
    calls = []
    def failing(dest, x, y, classes):
        calls.append(dest)
        if dest.name == 'val': raise KeyboardInterrupt
        return real(dest, x, y, classes)
    real = db._write_split
    monkeypatch.setattr(db, '_write_split', failing)
    dest = tmp_path/'tree'
    with pytest.raises(KeyboardInterrupt): write_fmnist_pngs(dest=dest)
    assert not dest.exists() and not list(tmp_path.iterdir())  # nothing half-written, no temporary folder left
    monkeypatch.setattr(db, '_write_split', real)
    assert write_fmnist_pngs(dest=dest) == dest and (dest/DONE_MARKER).is_file()
    assert sorted(str(f.relative_to(dest)) for f in get_files(dest)) == [
        'train/T-shirt_top/0.png', 'train/T-shirt_top/2.png', 'train/Trouser/1.png', 'train/Trouser/3.png',
        'val/T-shirt_top/1.png', 'val/Trouser/0.png']
    mtime = (dest/DONE_MARKER).stat().st_mtime_ns
    assert write_fmnist_pngs(dest=dest) == dest and (dest/DONE_MARKER).stat().st_mtime_ns == mtime  # reused
    other = tmp_path/'other'; other.mkdir()
    with pytest.raises(FileExistsError, match='no .complete file'): write_fmnist_pngs(dest=other)

def test_png_tree_small_and_full_are_separate(monkeypatch, tmp_path):
    from miniai.imagefiles import fmnist_png_dir
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    monkeypatch.setenv('MINIAI_SMALL', '1')
    small = fmnist_png_dir()
    monkeypatch.setenv('MINIAI_SMALL', '0')
    assert small != fmnist_png_dir() and small.parent == fmnist_png_dir().parent and tmp_path in small.parents

# ---------------------------------------------------------------- properties

@bounded(40)
@given(st.lists(st.integers(0, 10**6), max_size=200, unique=True), st.floats(0, 1), st.integers(0, 2**32))
def test_random_splitter_each_item_at_most_one_side(items, p, seed):
    train, valid = split_by_func(items, random_splitter(p, seed))
    assert not set(train) & set(valid) and sorted(train + valid) == sorted(items)
    assert (train, valid) == split_by_func(items, random_splitter(p, seed))                 # repeatable
    t2, v2 = split_by_func(items[::-1], random_splitter(p, seed))
    assert sorted(v2) == sorted(valid)                                                        # order does not matter

@bounded(40)
@given(st.lists(st.sampled_from([True, False, None]), max_size=100))
def test_split_by_func_follows_the_mask(mask):
    items = list(range(len(mask)))
    train, valid = split_by_func(items, lambda i: mask[i])
    assert train == [i for i in items if mask[i] is False] and valid == [i for i in items if mask[i] is True]

@bounded(60)
@given(st.lists(st.text(max_size=4), min_size=1, max_size=50), st.lists(st.text(max_size=4), max_size=50))
def test_category_processor_round_trip(train, other):
    cp = CategoryProcessor()
    idxs = cp(train)
    assert cp.vocab == sorted(set(train)) and cp.deprocess(idxs) == train
    assert all(0 <= i < len(cp.vocab) for i in idxs)
    vocab = list(cp.vocab)
    known = [o for o in other if o in cp.otoi]
    assert cp.deprocess(cp(known)) == known and cp.vocab == vocab                              # validation: vocab unchanged
    unknown = [o for o in other if o not in cp.otoi]
    if unknown:
        with pytest.raises(UnknownLabelError) as e: cp(known + unknown)
        assert e.value.label == unknown[0] and e.value.index == len(known)
    assert pickle.loads(pickle.dumps(cp)).deprocess(idxs) == train

def test_itemlist_indexing(tmp_path):
    il = ItemList(list('abcdef'), tfms=str.upper)
    assert il[1] == 'B' and il[-1] == 'F' and il[1:3] == ['B', 'C'] and il[[0, 5]] == ['A', 'F']
    assert il[np.array([True, False] * 3)] == ['A', 'C', 'E'] and il[torch.tensor(2)] == 'C'
    with pytest.raises(IndexError, match='one flag per item'): il[[True, False]]
    with pytest.raises(IndexError, match='bool'): il[True]
    with pytest.raises(IndexError, match='float'): il[[0.5]]
    ld = LabeledData(il, ItemList([0, 1, 0, 1, 0, 1]))
    assert ld[2] == ('C', 0) and len(ld) == 6
    with pytest.raises(ValueError, match='6 inputs but 2 labels'): LabeledData(il, ItemList([0, 1]))
