"""Property tests (hypothesis) for the pieces with many possible inputs.

Each test draws a bounded number of random cases (`max_examples`), and `deadline=None` because this
machine is shared and a slow draw is not a failure. The whole file should run in well under a minute.
"""
import math, struct
from collections import OrderedDict, defaultdict, namedtuple
import pytest, torch
import matplotlib
matplotlib.use('agg')
import matplotlib.pyplot as plt
from hypothesis import HealthCheck, given, settings, strategies as st
from torch.utils.data import default_collate
from datasets import Dataset as HFDataset, DatasetDict
from miniai.data import balanced_subset, parse_idx
from miniai.datasets import DataLoaders, TensorLoader, collate_dict, get_grid
from miniai.conv import to_device

def bounded(n): return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------- parse_idx

def _header(dims): return bytes([0, 0, 8, len(dims)]) + struct.pack(f'>{len(dims)}I', *dims)

@bounded(300)
@given(st.binary(max_size=64))
def test_parse_idx_random_bytes(data):
    "Random bytes: either a clean ValueError or a tensor of exactly the shape the header declares."
    try: t = parse_idx(data)
    except ValueError: return
    ndim = data[3]
    dims = struct.unpack(f'>{ndim}I', data[4:4 + 4*ndim])
    assert t.dtype == torch.uint8 and tuple(t.shape) == dims
    assert t.flatten().tolist() == list(data[4 + 4*ndim:])

@bounded(200)
@given(st.binary(min_size=4, max_size=4), st.binary(max_size=40))
def test_parse_idx_random_magic(magic, rest):
    "Any magic number other than 00 00 08 nd is refused with a ValueError that says so."
    try: parse_idx(magic + rest)
    except ValueError as e:
        assert str(e).startswith('<bytes>: ')
        return
    assert magic[:3] == b'\0\0\x08'

@bounded(200)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=4), st.integers(-40, 4), st.data())
def test_parse_idx_valid_header(dims, delta, data):
    "A well-formed header with the data too short, exact, or too long: exact gives the tensor, the rest a ValueError naming the file."
    n = math.prod(dims)
    body = data.draw(st.binary(min_size=n, max_size=n))
    blob = _header(dims) + body
    blob = blob[:max(0, len(blob) + delta)] if delta < 0 else blob + bytes(delta)
    if delta == 0:
        t = parse_idx(blob, 'f.idx')
        assert tuple(t.shape) == tuple(dims) and t.dtype == torch.uint8
        assert t.flatten().tolist() == list(body)
    else:
        with pytest.raises(ValueError, match=r'^f\.idx: '): parse_idx(blob, 'f.idx')

@bounded(50)
@given(st.lists(st.integers(2**20, 2**32 - 1), min_size=1, max_size=4))
def test_parse_idx_huge_dims(dims):
    "Dimensions far beyond the data: a ValueError, not a giant allocation or an overflow."
    with pytest.raises(ValueError, match='truncated'): parse_idx(_header(dims) + b'\0' * 16)

# ---------------------------------------------------------------- collate_dict / DataLoaders.from_dd

_col = st.sampled_from(['ints', 'floats', 'vecs'])

def _column(kind, n, draw):
    if kind == 'ints': return draw(st.lists(st.integers(-1000, 1000), min_size=n, max_size=n))
    if kind == 'floats': return draw(st.lists(st.floats(-1e3, 1e3, width=32), min_size=n, max_size=n))
    return draw(st.lists(st.lists(st.integers(0, 9), min_size=3, max_size=3), min_size=n, max_size=n))

@st.composite
def hf_datasets(draw):
    n = draw(st.integers(1, 12))
    kinds = draw(st.lists(_col, min_size=1, max_size=3))
    cols = {f'c{i}': _column(k, n, draw) for i, k in enumerate(kinds)}
    return n, cols

@bounded(25)
@given(hf_datasets(), st.integers(1, 6))
def test_collate_dict_via_from_dd(dsdef, bs):
    "Ordered validation batches, put back together, give every column in `features` order; dict batches match `default_collate`."
    n, cols = dsdef
    ds = HFDataset.from_dict(cols)
    dd = DatasetDict(train=ds, valid=ds)
    dls = DataLoaders.from_dd(dd, bs)
    batches = list(dls.valid)
    assert len(batches) == math.ceil(n / (2 * bs))
    assert all(isinstance(b, tuple) and len(b) == len(cols) for b in batches)
    for j, (k, v) in enumerate(cols.items()):
        # a column of lists comes out of default_collate transposed: one tensor per position in the list
        got = torch.cat([torch.stack(b[j], 1) if isinstance(b[j], list) else b[j] for b in batches])
        torch.testing.assert_close(got, torch.as_tensor(v, dtype=got.dtype))
    dict_batches = list(DataLoaders.from_dd(dd, bs, as_tuple=False).valid)
    for b, d in zip(batches, dict_batches):
        assert list(d) == list(cols)
        for x, k in zip(b, cols): torch.testing.assert_close(x, d[k])  # lists of tensors compare item by item
    # collate_dict on its own, against default_collate of the same items
    items = [ds[i] for i in range(n)]
    ref = default_collate(items)
    got = collate_dict(ds)(items)
    assert len(got) == len(cols)
    for x, k in zip(got, cols):
        if isinstance(x, list): assert len(x) == len(ref[k]) and all(torch.equal(a, b) for a, b in zip(x, ref[k]))
        else: torch.testing.assert_close(x, ref[k])

@bounded(25)
@given(st.lists(st.tuples(st.integers(-5, 5), st.floats(-1, 1, width=32)), min_size=1, max_size=10), st.integers(1, 4))
def test_default_collate_tuples_via_from_dd(rows, bs):
    "Tuple items through a torch DataLoader built by `get_dls` (training shuffles): every row exactly once."
    ds = HFDataset.from_dict({'a': [r[0] for r in rows], 'b': [r[1] for r in rows]})
    dls = DataLoaders.from_dd(DatasetDict(train=ds, valid=ds), bs)
    seen = sorted((int(a), float(b)) for xa, xb in dls.train for a, b in zip(xa, xb))
    assert seen == sorted((a, float(torch.tensor(b))) for a, b in rows)

# ---------------------------------------------------------------- to_device

Pt = namedtuple('Pt', 'x y')

tensors = st.builds(lambda shape, dt: torch.zeros(shape, dtype=dt).random_(0, 7),
                    st.lists(st.integers(0, 3), max_size=3), st.sampled_from([torch.float32, torch.int64, torch.uint8]))
leaves = st.one_of(tensors, st.integers(), st.text(max_size=3), st.none(), st.floats(allow_nan=False))

def _extend(children):
    return st.one_of(st.lists(children, max_size=3),
                     st.lists(children, max_size=3).map(tuple),
                     st.builds(Pt, children, children),
                     st.dictionaries(st.text(max_size=2), children, max_size=3),
                     st.dictionaries(st.text(max_size=2), children, max_size=3).map(OrderedDict),
                     st.dictionaries(st.text(max_size=2), children, max_size=3).map(lambda d: defaultdict(list, d)))

nested = st.recursive(leaves, _extend, max_leaves=12)

def _same(a, b, device):
    "`b` is `a` with every tensor on `device`: same container types, keys, order and values."
    assert type(a) is type(b)
    if isinstance(a, torch.Tensor):
        assert b.device.type == device and b.shape == a.shape and b.dtype == a.dtype
        if device != 'meta': assert torch.equal(a, b.cpu())
    elif isinstance(a, dict):
        assert list(a) == list(b)
        if isinstance(a, defaultdict): assert b.default_factory is a.default_factory
        for k in a: _same(a[k], b[k], device)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        if hasattr(a, '_fields'): assert b._fields == a._fields
        for x, y in zip(a, b): _same(x, y, device)
    else: assert a == b

@bounded(150)
@given(nested, st.sampled_from(['meta', 'cpu']))
def test_to_device_nested(x, device):
    _same(x, to_device(x, device), device)

# ---------------------------------------------------------------- TensorLoader

@bounded(200)
@given(st.integers(1, 60), st.integers(1, 70), st.booleans(), st.booleans(), st.integers(0, 2**31 - 1))
def test_tensorloader_every_index_once(n, bs, shuffle, drop_last, seed):
    dl = TensorLoader(torch.arange(n), torch.arange(n) * 2, batch_size=bs, shuffle=shuffle, drop_last=drop_last,
                      generator=torch.Generator().manual_seed(seed))
    for _ in range(2):  # two epochs, each one complete
        batches = list(dl)
        assert len(dl) == len(batches)
        for xb, yb in batches: assert torch.equal(yb, xb * 2)
        idx = torch.cat([xb for xb, _ in batches]).tolist() if batches else []
        assert len(idx) == len(set(idx))  # no index twice
        if drop_last:
            assert len(batches) == n // bs and all(len(xb) == bs for xb, _ in batches)
            assert len(idx) == n // bs * bs
        else:
            assert sorted(idx) == list(range(n))
            assert len(batches) == math.ceil(n / bs)
            assert all(len(xb) == bs for xb, _ in batches[:-1])
        if not shuffle: assert idx == list(range(len(idx)))

# ---------------------------------------------------------------- balanced_subset

@bounded(150)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=200), st.floats(0.01, 1.0))
def test_balanced_subset(labels, frac):
    y = torch.tensor(labels)
    idx = balanced_subset(y, frac)
    assert torch.equal(idx, balanced_subset(y, frac))  # deterministic
    assert idx.tolist() == sorted(set(idx.tolist()))  # sorted, no repeats
    for c in set(labels):
        of_c = torch.nonzero(y == c).flatten()
        want = max(1, round(frac * len(of_c)))
        kept = idx[y[idx] == c]
        assert torch.equal(kept, of_c[:want])  # the first `want` items of each class, every class present

@bounded(30)
@given(st.one_of(st.floats(-5, 0), st.floats(1.0001, 5)))
def test_balanced_subset_bad_frac(frac):
    with pytest.raises(ValueError, match='frac='): balanced_subset(torch.arange(5), frac)

# ---------------------------------------------------------------- get_grid

@bounded(25)
@given(st.integers(1, 16), st.one_of(st.none(), st.integers(1, 6)), st.one_of(st.none(), st.integers(1, 6)))
def test_get_grid_axis_counts(n, nrows, ncols):
    try:
        if nrows is not None and ncols is not None and nrows * ncols < n:
            with pytest.raises(ValueError, match=f'fewer than n={n}'): get_grid(n, nrows, ncols, imsize=0.5)
            return
        fig, axs = get_grid(n, nrows, ncols, imsize=0.5)
        flat = list(axs.flat)
        assert len(flat) >= n
        assert sum(ax.axison for ax in flat) == n
        assert all(ax.axison for ax in flat[:n])
        if nrows is not None: assert len(flat) == nrows * (ncols or math.ceil(n / nrows))
        if ncols is not None and nrows is None: assert len(flat) == ncols * math.ceil(n / ncols)
    finally: plt.close('all')
