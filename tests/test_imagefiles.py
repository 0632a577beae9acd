"""What a real collection of image files holds (lesson 15a), each case with its outcome: files PIL cannot open, huge images,
damaged files, transparency, phone photos, animations, CMYK and 16-bit images, hidden files, odd names; the empty-folder
check under `include`/`recurse` over generated trees; and a folder with all of it trained end to end for one epoch.

Every test builds its own files under pytest's `tmp_path`; nothing reads the Fashion-MNIST tree.
"""
import warnings
from pathlib import Path
import numpy as np
import pytest, torch
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image, ImageDraw
from miniai.datablock import (CategoryProcessor, ImageList, ItemError, LabeledData, ItemList, Resize, ResizeFixed, SplitData,
                              get_files, grandparent_splitter, image_extensions, label_by_func, make_grey, make_rgb,
                              parent_labeler, to_byte_tensor, to_dls, to_float_tensor)
from miniai.imagefiles import BadImagesError, LeftOutWarning, check_label_folders, open_image, scan_images

RGB_TFMS = [make_rgb, Resize(16), to_byte_tensor, to_float_tensor]

def rand_im(size=(12, 10), mode='RGB', seed=0):
    a = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(a).convert(mode)

def save(fn, im=None, **kw):
    fn = Path(fn)
    fn.parent.mkdir(parents=True, exist_ok=True)
    (im if im is not None else rand_im()).save(fn, **kw)
    return fn

def classes(root, names=('cat', 'dog'), n=2, splits=('train', 'valid')):
    for s in splits:
        for c in names:
            for i in range(n): save(root/s/c/f'{i}.png', rand_im(seed=i))
    return root

@pytest.fixture
def small_limit(monkeypatch):
    "PIL's size limit lowered to 10,000 pixels, so that 'huge' images stay small files"
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 10_000)

def no_warnings(f):
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        return f()

# ---------------------------------------------------------------- what gets listed

def test_default_extensions_are_what_pil_opens(tmp_path):
    classes(tmp_path)
    (tmp_path/'train'/'cat'/'logo.svg').write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (tmp_path/'notes.txt').write_text('x')
    assert '.svg' not in image_extensions and {'.png', '.jpg', '.gif', '.tif', '.webp'} <= image_extensions
    with pytest.warns(LeftOutWarning) as w: il = ImageList.from_files(tmp_path)
    assert len(il) == 8 and len(w) == 1
    msg = str(w[0].message)
    assert 'left out 2 files with other extensions (1 .svg, 1 .txt)' in msg and '.svg is an image format PIL cannot open' in msg

def test_explicit_extension_pil_cannot_read_fails_at_listing(tmp_path):
    for c in ('a', 'b'): (tmp_path/c).mkdir(); (tmp_path/c/'x.svg').write_text('<svg/>')
    with pytest.raises(BadImagesError, match=r"2 of 2 files .* cannot be used\. 2 not an image PIL can open: a/x\.svg, b/x\.svg"):
        ImageList.from_files(tmp_path, extensions=['.svg'])

def test_hidden_files_uppercase_extensions_odd_names(tmp_path):
    classes(tmp_path, n=1)
    odd = [save(tmp_path/'train'/'cat'/'Holiday Photo 1.JPG', rand_im(), format='JPEG'),
           save(tmp_path/'train'/'cat'/'café ñandú 東京.png'), save(tmp_path/'train'/'dog'/'UPPER.PNG')]
    save(tmp_path/'train'/'cat'/'.hidden.png'); save(tmp_path/'train'/'.thumbs'/'0.png')
    (tmp_path/'train'/'dog'/'.DS_Store').write_bytes(b'\0\0\0\1Bud1')
    il = no_warnings(lambda: ImageList.from_files(tmp_path, tfms=RGB_TFMS))
    assert len(il) == 7 and all(f in il.items for f in odd) and not any(p.startswith('.') for f in il.items for p in f.parts[-2:])
    assert all(il[il.items.index(f)].shape == (3, 16, 16) for f in odd)

# ---------------------------------------------------------------- empty class folders: no false errors (issue of include=)

def test_include_never_calls_a_left_out_folder_empty(tmp_path):
    "Nested class folders, labels at different depths; `include` leaves full folders out on purpose"
    for f in ['buildings/old/0.png', 'buildings/new/0.png', 'buttons/0.png', 'cats/tabby/0.png', 'cats/black/deep/0.png',
              'dogs/0.png', 'empty_on_purpose/readme.txt']:
        save(tmp_path/f) if f.endswith('.png') else ((tmp_path/f).parent.mkdir(parents=True), (tmp_path/f).write_text('x'))
    with pytest.warns(LeftOutWarning):
        with pytest.raises(ValueError, match=r'empty_on_purpose holds no images \(it holds 1 \.txt, left out\).*include='):
            ImageList.from_files(tmp_path)
    for inc in (['cats', 'dogs'], ['buildings', 'buttons', 'cats'], ['cats'], ['dogs', 'buttons']):
        il = no_warnings(lambda: ImageList.from_files(tmp_path, include=inc))
        assert {f.relative_to(tmp_path).parts[0] for f in il.items} == set(inc)
    (tmp_path/'cats'/'calico').mkdir()  # a class folder left empty below an included folder is still found
    with pytest.raises(ValueError, match=r'cats/calico holds no images, while 2 folders beside it do'):
        ImageList.from_files(tmp_path, include=['cats'])
    assert len(no_warnings(lambda: ImageList.from_files(tmp_path/'dogs', recurse=False))) == 1

def test_a_folder_beside_one_image_folder_is_not_a_class(tmp_path):
    save(tmp_path/'images'/'0.png'); save(tmp_path/'images'/'1.png')
    (tmp_path/'annotations').mkdir(); (tmp_path/'annotations'/'0.xml').write_text('<a/>')
    with pytest.warns(LeftOutWarning, match=r'1 \.xml'): assert len(ImageList.from_files(tmp_path, extensions=['.png'])) == 2

def test_a_second_link_to_a_folder_is_not_empty(tmp_path):
    classes(tmp_path, splits=('train',))
    (tmp_path/'train'/'kitten').symlink_to(tmp_path/'train'/'cat', target_is_directory=True)
    assert len(no_warnings(lambda: ImageList.from_files(tmp_path))) == 4  # each file once; `kitten` is `cat`, not empty

_names = st.sampled_from(['a', 'b', 'c', 'd'])

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.lists(_names, min_size=1, max_size=3), st.sampled_from(['png', 'txt', None])), max_size=14),
       st.one_of(st.none(), st.lists(_names, max_size=4, unique=True)), st.booleans())
def test_empty_folder_check_on_generated_trees(tmp_path_factory, tree, include, recurse):
    "The check fires only on a searched folder with no image below it, beside two or more searched folders that hold images"
    root = tmp_path_factory.mktemp('tree')
    for parts, kind in tree:
        d = root.joinpath(*parts); d.mkdir(parents=True, exist_ok=True)
        if kind: (d/f'f.{kind}').write_bytes(b'')
    files = get_files(root, ['.png'], recurse=recurse, include=include)
    has_image = lambda d: any(d in f.parents for f in files)
    def searched(d):
        rel = d.relative_to(root).parts
        return recurse and (include is None or rel[0] in include)
    try: check_label_folders(files, root, include)
    except ValueError as e:
        name = str(e).split('the folder ')[1].split(' holds no images')[0]
        d = Path(name)
        assert searched(d) and not has_image(d), (str(e), files)
        full = [s for s in d.parent.iterdir() if s.is_dir() and searched(s) and has_image(s)]
        assert len(full) >= 2
    else:  # no error: no searched folder without images sits beside two searched folders with images
        for parent in {f.parent.parent for f in files if root in f.parent.parent.parents or f.parent.parent == root}:
            subs = [s for s in parent.iterdir() if s.is_dir() and searched(s)]
            if sum(map(has_image, subs)) >= 2: assert all(map(has_image, subs)), (parent, files)

# ---------------------------------------------------------------- found at listing: huge images, files that are not images

def test_huge_images_found_at_listing(tmp_path, small_limit):
    classes(tmp_path, n=1)
    between = save(tmp_path/'train'/'cat'/'scan.png', Image.new('L', (150, 100)))      # 15,000 px: PIL warns at every read
    over = save(tmp_path/'train'/'dog'/'big scan.png', Image.new('L', (300, 200)))     # 60,000 px: PIL refuses
    with pytest.raises(BadImagesError) as e: ImageList.from_files(tmp_path)
    msg = str(e.value)
    assert '2 of 6 files' in msg and "2 over the size limit of 10,000 pixels (PIL.Image.MAX_IMAGE_PIXELS)" in msg
    assert 'train/cat/scan.png (15,000 pixels)' in msg and 'train/dog/big scan.png (60,000 pixels)' in msg
    assert 'skip_bad=True' in msg and 'MAX_IMAGE_PIXELS = None' in msg
    assert set(e.value.problems) == {between, over}
    with pytest.warns(LeftOutWarning, match=r'left out 2 of 6 files that cannot be used \(skip_bad=True\): 2 over the size limit'):
        il = ImageList.from_files(tmp_path, skip_bad=True)
    assert len(il) == 4 and between not in il.items
    Image.MAX_IMAGE_PIXELS = None  # the user's other choice: lift the limit
    assert len(no_warnings(lambda: ImageList.from_files(tmp_path))) == 6

@pytest.mark.parametrize('content', [b'', b'<html>not an image</html>', b'\x89PNG\r\n\x1a\n\0\0'])
def test_not_an_image_found_at_listing(tmp_path, content):
    classes(tmp_path, n=1)
    bad = tmp_path/'valid'/'dog'/'page.png'; bad.write_bytes(content)
    with pytest.raises(BadImagesError, match=r'valid/dog/page\.png') as e: ImageList.from_files(tmp_path)
    assert list(e.value.problems) == [bad]
    with pytest.warns(LeftOutWarning, match='page.png'): assert len(ImageList.from_files(tmp_path, skip_bad=True)) == 4

def test_many_offenders_all_counted(tmp_path):
    for i in range(30): (tmp_path/f'{i:02d}.png').write_bytes(b'x')
    save(tmp_path/'ok.png')
    with pytest.raises(BadImagesError, match=r'30 of 31 files .* 30 not an image PIL can open: 00\.png, .*19\.png and 10 more') as e:
        ImageList.from_files(tmp_path)
    assert len(e.value.problems) == 30

# ---------------------------------------------------------------- found when read: truncated files

def test_truncated_file_reported_once_and_replaced_with_skip_bad(tmp_path):
    classes(tmp_path, n=3)
    bad = tmp_path/'train'/'cat'/'1.png'
    bad.write_bytes(bad.read_bytes()[:80])
    ll = label_by_func(SplitData.split_by_func(ImageList.from_files(tmp_path, tfms=RGB_TFMS), grandparent_splitter),
                       parent_labeler, proc_y=CategoryProcessor())
    i = ll.train.x.items.index(bad)
    with pytest.raises(ItemError, match=rf"ImageList\[{i}\] \(.*1\.png\): OSError"): ll.train[i]
    ll = label_by_func(SplitData.split_by_func(ImageList.from_files(tmp_path, tfms=RGB_TFMS, skip_bad=True), grandparent_splitter),
                       parent_labeler, proc_y=CategoryProcessor())
    assert ll.train.x.skip_bad and ll.valid.x.skip_bad  # kept through the split and the labelling
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        for _ in range(3): x, y = ll.train[i]
        xs, ys = ll.train[[i, i + 1]]
    assert len(w) == 1 and str(bad) in str(w[0].message) and 'skip_bad=True' in str(w[0].message)
    assert torch.equal(x, ll.train.x[i + 1]) and y == ll.train.y[i + 1]   # the next item, with its own label
    assert len(xs) == 2 and ys == [ll.train.y[i + 1]] * 2

# ---------------------------------------------------------------- how each kind of image is read

def test_transparency_on_a_chosen_background(tmp_path):
    icon = Image.new('RGBA', (20, 20), (0, 0, 0, 0))
    ImageDraw.Draw(icon).rectangle([5, 5, 14, 14], fill=(30, 30, 30, 255))
    fn = save(tmp_path/'icon.png', icon)
    im = open_image(fn)
    assert np.array(make_rgb(im))[0, 0].tolist() == [255, 255, 255] and np.array(make_rgb(im))[10, 10].tolist() == [30, 30, 30]
    assert np.array(make_grey(im, bg=0))[0, 0] == 0 and np.array(make_rgb(im, bg=(0, 128, 0)))[0, 0].tolist() == [0, 128, 0]
    half = Image.new('RGBA', (2, 2), (0, 0, 0, 128))  # half transparent black on white: mid grey
    assert abs(int(np.array(make_grey(half))[0, 0]) - 127) <= 1
    for im in (Image.new('LA', (2, 2), (0, 0)), Image.new('PA', (2, 2), (0, 0))):
        assert np.array(make_grey(im)).min() == 255, im.mode
    for mode, key in (('L', 5), ('RGB', (5, 5, 5))):  # a transparent colour key (PNG's tRNS)
        im = Image.new(mode, (2, 2), key); im.info['transparency'] = key
        assert np.array(make_grey(open_image(save(tmp_path/f'key{mode}.png', im)))).min() == 255, mode

@pytest.mark.parametrize('orientation,turn', [(3, Image.Transpose.ROTATE_180), (6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270)])
def test_phone_photo_turned_by_its_exif_orientation(tmp_path, orientation, turn):
    up = Image.new('L', (30, 40), 255)
    ImageDraw.Draw(up).rectangle([0, 0, 29, 9], fill=0)  # dark band at the top
    exif = Image.Exif(); exif[0x0112] = orientation
    stored = up.transpose({3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}[orientation])
    fn = save(tmp_path/'photo.jpg', stored, exif=exif)
    im = open_image(fn)
    assert im.size == (30, 40) and np.array(im)[:10].mean() < 30 and np.array(im)[20:].mean() > 220
    assert Image.open(fn).size == stored.size   # PIL alone gives the pixels as stored

def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new('L', (6, 6), v) for v in (20, 200, 90)]
    fn = tmp_path/'spin.gif'
    frames[0].save(fn, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(fn).n_frames == 3
    t = to_byte_tensor(make_grey(open_image(fn)))
    assert t.shape == (1, 6, 6) and t.float().mean() == 20

def test_cmyk_jpeg_and_16_bit_png(tmp_path):
    cmyk = save(tmp_path/'print.jpg', Image.new('CMYK', (8, 8), (0, 255, 255, 0)))   # red in print colours
    assert Image.open(cmyk).mode == 'CMYK'
    r, g, b = np.array(make_rgb(open_image(cmyk)))[4, 4].tolist()
    assert r > 200 and g < 60 and b < 60
    deep = save(tmp_path/'scan.png', Image.fromarray(np.full((4, 4), 51400, dtype=np.uint16)))
    assert Image.open(deep).mode.startswith('I')
    assert np.array(make_grey(open_image(deep)))[0, 0] == 200   # 51400 / 257: scaled, not clipped at 255

# ---------------------------------------------------------------- resizing mixed sizes

@pytest.mark.parametrize('size', [(60, 20), (20, 60), (33, 33), (5, 7)])
def test_resize_keeps_the_aspect_ratio(size):
    im = rand_im(size)
    for t in (ResizeFixed(16), Resize(16), Resize(16, 'pad'), Resize((24, 12), 'pad'), Resize((24, 12))):
        assert t(im).size == t.size and t(im).mode == 'RGB'
    w, h = size
    padded = np.array(Resize(16, 'pad', fill=(0, 255, 0))(im))
    if w > h * 1.5: assert (padded[0] == [0, 255, 0]).all()          # wide: padding above and below
    if h > w * 1.5: assert (padded[:, 0] == [0, 255, 0]).all()       # tall: padding left and right
    with pytest.raises(ValueError, match="method='squash'; use 'crop' or 'pad'"): Resize(16, 'squash')

# ---------------------------------------------------------------- a real folder, end to end

def test_real_folder_trains_end_to_end(tmp_path, small_limit):
    "One of each kind of file, listed, split, labelled, batched and trained for one epoch with skip_bad=True"
    from torch import nn
    import torch.nn.functional as F
    from miniai.learner import DeviceCB, TrainLearner
    classes(tmp_path, names=('icons', 'photos'), n=3)
    t = tmp_path/'train'
    icon = Image.new('RGBA', (24, 24), (0, 0, 0, 0)); ImageDraw.Draw(icon).ellipse([4, 4, 20, 20], fill=(20, 20, 40, 255))
    save(t/'icons'/'shirt.png', icon)
    (t/'icons'/'logo.svg').write_text('<svg/>'); (t/'icons'/'README.txt').write_text('x')
    frames = [rand_im((16, 16), 'L', s) for s in range(3)]
    frames[0].save(t/'icons'/'spinner.gif', save_all=True, append_images=frames[1:])
    save(t/'photos'/'print.JPG', rand_im((20, 30)).convert('CMYK'))
    save(t/'photos'/'scan16.png', Image.fromarray(np.arange(300, dtype=np.uint16).reshape(15, 20) * 200))
    exif = Image.Exif(); exif[0x0112] = 6
    save(t/'photos'/'phone photo é.jpg', rand_im((30, 20)), exif=exif)
    save(t/'photos'/'.hidden.png')
    broken = save(t/'photos'/'broken.png', rand_im((40, 40))); broken.write_bytes(broken.read_bytes()[:200])
    (t/'icons'/'page.png').write_text('<html/>')
    save(t/'photos'/'huge.png', Image.new('L', (200, 100)))
    with pytest.warns(LeftOutWarning) as w:
        il = ImageList.from_files(tmp_path, tfms=[make_rgb, Resize(16), to_byte_tensor, to_float_tensor], skip_bad=True)
    msgs = [str(o.message) for o in w]
    assert any('1 .svg' in m and '1 .txt' in m for m in msgs) and any('page.png' in m and 'huge.png' in m for m in msgs)
    ll = label_by_func(SplitData.split_by_func(il, grandparent_splitter), parent_labeler, proc_y=CategoryProcessor())
    assert ll.train.proc_y[0].vocab == ['icons', 'photos'] and len(ll.train) == 12
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        learn = TrainLearner(model, to_dls(ll, bs=4), F.cross_entropy, lr=0.01, cbs=[DeviceCB()])
        learn.fit(1)
    read = [o for o in w if issubclass(o.category, LeftOutWarning)]
    assert len(read) == 1 and 'broken.png' in str(read[0].message)   # the truncated file, reported once
    assert torch.isfinite(learn.loss)
