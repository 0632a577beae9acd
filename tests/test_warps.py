"""Per-item and batch augmentation (lesson 15b): exact sizes, the perspective solver, and the affine matrices against PyTorch's
own operations. Nothing reads the Fashion-MNIST tree; hypothesis tests draw a bounded number of cases."""
import math, random
import numpy as np
import pytest, torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image
from miniai.warps import (BatchAffine, BatchWarp, RandomResizedCrop, batch_affine, batch_warp, find_coeffs, flip_mats,
                          rand_affine_mats, rotation_mats, zoom_mats)

def bounded(n): return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow])

@bounded(30)
@given(st.integers(1, 60), st.integers(1, 60), st.integers(1, 40), st.floats(0.01, 1), st.floats(0.2, 5), st.integers(0, 1000))
def test_random_resized_crop_exact_size(w, h, size, smin, rmin, seed):
    random.seed(seed)
    t = RandomResizedCrop(size, scale=(smin, 1.), ratio=(min(rmin, 1 / rmin), max(rmin, 1 / rmin)))
    assert t(Image.new('RGB', (w, h))).size == (size, size)

def test_crop_box_never_leaves_the_image():
    "The fallback box of an image whose own ratio is allowed: w / (w / h) came out a hair over h (1 x 49: y0 = -3.6e-15)"
    from miniai.warps import _crop_box
    for w, h in [(1, 49), (2, 49), (3, 47), (49, 1)]:
        x0, y0, x1, y1 = _crop_box(w, h, (1., 1.), (w / h, w / h))
        assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h, (w, h, (x0, y0, x1, y1))

@bounded(30)
@given(st.lists(st.tuples(st.floats(-50, 150), st.floats(-50, 150)), min_size=4, max_size=4))
def test_find_coeffs_maps_the_points(src):
    dst = [(0, 0), (0, 100), (100, 100), (100, 0)]
    try: a, b, c, d, e, f, g, h = find_coeffs(src, dst)
    except ValueError as e:  # degenerate points: no perspective transform, and the error says so
        assert 'three are on one line' in str(e)
        return
    for (x, y), (u, v) in zip(dst, src):
        den = g * x + h * y + 1
        assert abs((a*x + b*y + c) / den - u) < 1e-3 * (1 + abs(u)) and abs((d*x + e*y + f) / den - v) < 1e-3 * (1 + abs(v))

def test_find_coeffs_degenerate():
    dst = [(0, 0), (0, 100), (100, 100), (100, 0)]
    for src in ([(0, 0), (0, 1), (5, 0), (0, 1)], [(0, 0), (1, 1), (2, 2), (5, 0)]):
        with pytest.raises(ValueError, match='two of the points are the same, or three are on one line'): find_coeffs(src, dst)

@bounded(20)
@given(st.integers(1, 6), st.integers(2, 12), st.integers(2, 12), st.integers(0, 1000))
def test_batch_warp_keeps_shape_and_range(n, h, w, seed):
    torch.manual_seed(seed)
    x = torch.rand(n, 3, h, w)
    y = batch_warp(x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1 + 1e-5

def test_random_resized_crop_is_one_antialiased_call():
    "Shrinking a crop by 8 with resize(box=) averages the pixels: fine stripes become grey, not a false pattern"
    stripes = Image.fromarray(np.tile(np.array([0, 255], np.uint8), (256, 128)))   # 256x256, one-pixel stripes
    out = np.array(RandomResizedCrop(32, scale=(1., 1.), ratio=(1., 1.))(stripes)).astype(float)
    assert abs(out.mean() - 127.5) < 2 and out.std() < 3

@bounded(30)
@given(st.floats(-360, 360), st.floats(-360, 360), st.floats(0.3, 3), st.booleans())
def test_affine_mats_compose_like_maps(a, b, s, flip):
    "A product of matrices is the maps applied one after the other (right first); a turn and its reverse cancel"
    p = torch.tensor([0.3, -0.7, 1.])
    R1, R2, Z, Fl = rotation_mats(torch.tensor([a])), rotation_mats(torch.tensor([b])), zoom_mats(torch.tensor([s])), flip_mats(torch.tensor([flip]))
    M = R1 @ Z @ Fl
    assert torch.allclose(M[0] @ p, R1[0] @ (Z[0] @ (Fl[0] @ p)), atol=1e-5)
    assert torch.allclose(R1 @ R2, rotation_mats(torch.tensor([a + b])), atol=1e-5)
    assert torch.allclose(rotation_mats(torch.tensor([a])) @ rotation_mats(torch.tensor([-a])), torch.eye(3)[None], atol=1e-5)
    assert torch.allclose(M[0, 2], torch.tensor([0., 0., 1.]))  # affine: the last row stays (0, 0, 1)

@pytest.mark.parametrize('k', [1, 2, 3])
def test_quarter_turns_and_flip_are_exact(k):
    torch.manual_seed(0)
    x = torch.rand(3, 2, 9, 9)
    ones = torch.ones(3)
    assert torch.allclose(batch_affine(x, rotation_mats(90 * k * ones)), x.rot90(k, (2, 3)), atol=1e-5)
    assert torch.allclose(batch_affine(x, flip_mats(ones.bool())), x.flip(-1), atol=1e-5)
    assert torch.allclose(batch_affine(x, zoom_mats(ones)), x, atol=1e-5)

def test_zoom_is_the_centre_enlarged():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 16, 16)
    z = batch_affine(x, zoom_mats(2 * torch.ones(2)))
    ref = F.interpolate(x[..., 4:12, 4:12], scale_factor=2, mode='bilinear', align_corners=False)
    assert torch.allclose(z[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-5)
    # towards a corner: the zoomed part is the top-left quarter
    zc = batch_affine(x, zoom_mats(2 * torch.ones(2), torch.tensor([[-0.5, -0.5]] * 2)))
    ref = F.interpolate(x[..., :8, :8], scale_factor=2, mode='bilinear', align_corners=False)
    assert torch.allclose(zc[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-5)

def test_padding_modes_fill_the_corners():
    x = torch.full((1, 1, 8, 8), 0.5)
    m = zoom_mats(torch.tensor([0.5]))  # zoom out: the corners read outside
    assert batch_affine(x, m, 'zeros')[0, 0, 0, 0] == 0
    for mode in ('border', 'reflection'): assert torch.allclose(batch_affine(x, m, mode), x)
    assert batch_warp(x, corners=torch.tensor([[[-2., -2.], [-2., 2.], [2., 2.], [2., -2.]]]), padding_mode='border').min() == 0.5

@bounded(20)
@given(st.integers(1, 8), st.floats(1., 2.), st.integers(0, 1000))
def test_rand_affine_zoom_stays_inside(n, zmax, seed):
    "With no rotation, the part of the input that a zoom of at least 1 shows lies inside the image: no padding is read"
    torch.manual_seed(seed)
    m = rand_affine_mats(n, max_deg=0., zoom=(1., zmax), flip_p=0.5)
    corners = torch.tensor([[-1., -1., 1.], [1., 1., 1.], [-1., 1., 1.], [1., -1., 1.]]).T
    assert (m @ corners)[:, :2].abs().max() <= 1 + 1e-5

def test_batch_modules():
    torch.manual_seed(0)
    x = torch.rand(4, 1, 10, 10)
    for m in (BatchWarp(padding_mode='reflection'), BatchAffine(max_deg=45, zoom=(0.8, 1.3))):
        y = m(x)
        assert y.shape == x.shape and not torch.equal(y, x) and 'padding_mode' in repr(m)
