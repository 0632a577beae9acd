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
        _epoch_indices(dl, n, bs, drop_last, ordered=not shuffle, k=2)

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

# ---------------------------------------------------------------- samplers, through get_dls (torch's RandomSampler / SequentialSampler / BatchSampler)

from miniai.training import Dataset, get_dls

def _epoch_indices(dl, n, bs, drop_last, ordered, k=3):
    "One epoch of `dl` over items (i, k*i): every index at most once, all of them unless drop_last, in order if `ordered`."
    batches = list(dl)
    assert len(dl) == len(batches)
    for xb, yb in batches: assert torch.equal(yb, xb * k)
    idx = torch.cat([xb for xb, _ in batches]).tolist() if batches else []
    assert len(idx) == len(set(idx))  # no index twice
    if drop_last:
        assert len(batches) == n // bs and all(len(xb) == bs for xb, _ in batches) and len(idx) == n // bs * bs
    else:
        assert sorted(idx) == list(range(n)) and len(batches) == math.ceil(n / bs)  # every index exactly once
        assert all(len(xb) == bs for xb, _ in batches[:-1])
    if ordered: assert idx == list(range(len(idx)))
    return idx

@bounded(80)
@given(st.integers(1, 90), st.integers(1, 40), st.booleans(), st.integers(0, 2**31 - 1))
def test_get_dls_samplers_every_index_once(n, bs, drop_last, seed):
    "Training batches are a fresh permutation each epoch, validation batches (size 2*bs) in order; drop_last drops only the partial batch."
    ds = Dataset(torch.arange(n), torch.arange(n) * 3)
    torch.manual_seed(seed)
    train, valid = get_dls(ds, ds, bs, drop_last=drop_last)
    for _ in range(2):  # each epoch complete, not only the first
        _epoch_indices(train, n, bs, drop_last, ordered=False)
        _epoch_indices(valid, n, 2 * bs, drop_last, ordered=True)

# ---------------------------------------------------------------- Metric weighted averaging

from miniai.learner import Metric, Accuracy

@bounded(150)
@given(st.lists(st.tuples(st.floats(-1e3, 1e3), st.integers(1, 500)), max_size=25), st.booleans())
def test_metric_weighted_mean(items, as_tensor):
    "`value` is the mean of the added values weighted by `n`, for floats and tensors alike; NaN before anything is added."
    m = Metric()
    for v, n in items: m.add(torch.tensor(v, dtype=torch.float64) if as_tensor else v, n=n)
    if not items:
        assert math.isnan(m.value)
        return
    want = math.fsum(v * n for v, n in items) / sum(n for _, n in items)
    assert math.isclose(m.value, want, rel_tol=1e-9, abs_tol=1e-9)
    assert m.count == sum(n for _, n in items)
    m.reset()
    assert math.isnan(m.value) and m.count == 0

@bounded(100)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=8), st.integers(2, 6), st.booleans(), st.integers(0, 2**31 - 1))
def test_accuracy_over_batches_is_exact(sizes, c, scores, seed):
    "Batches of any sizes: `update` weights each by its size, so the result is the accuracy over all items at once."
    import torcheval.metrics
    g = torch.Generator().manual_seed(seed)
    acc, ref, P, T = Accuracy(), torcheval.metrics.MulticlassAccuracy(), [], []
    for n in sizes:
        p, t = torch.randn(n, c, generator=g), torch.randint(0, c, (n,), generator=g)
        p = p if scores else p.argmax(1)  # class scores, or class indices
        acc.update(p, t); ref.update(p, t); P.append(p); T.append(t)
    P, T = torch.cat(P), torch.cat(T)
    want = ((P.argmax(1) if scores else P) == T).double().mean().item()
    assert math.isclose(acc.value, want, abs_tol=1e-6)
    assert math.isclose(acc.value, ref.compute().item(), abs_tol=1e-6)

# ---------------------------------------------------------------- schedule functions

from miniai.sched import sched_lin, sched_cos, sched_exp, sched_no, combine_scheds, one_cycle
import itertools

def _close(a, b): return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)

def _monotonic(vals, up):
    tol = 1e-12 * max([1., *map(abs, vals)])
    return all((b >= a - tol) if up else (b <= a + tol) for a, b in zip(vals, vals[1:]))

@bounded(200)
@given(st.sampled_from(['lin', 'cos', 'exp']), st.floats(1e-4, 10), st.floats(1e-4, 10), st.lists(st.floats(0, 1), min_size=2, max_size=25))
def test_sched_ends_and_monotonic(kind, start, end, ps):
    "Every annealer starts at `start`, ends at `end`, stays between them, and moves one way only."
    f = dict(lin=sched_lin, cos=sched_cos, exp=sched_exp)[kind](start, end)
    assert _close(f(0.), start) and _close(f(1.), end)
    vals = [f(p) for p in sorted(ps)]
    lo, hi = min(start, end), max(start, end)
    assert all(lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9) for v in vals)
    assert _monotonic(vals, up=end >= start)
    assert all(sched_no(start, end)(p) == start for p in ps)

@bounded(150)
@given(st.lists(st.floats(0.05, 1), min_size=1, max_size=5), st.data())
def test_combine_scheds_phases(raw, data):
    "Each phase starts where its own schedule starts, runs it at the right speed, and the last one ends the schedule."
    pcts = [r / sum(raw) for r in raw]
    pcts[-1] = 1 - sum(pcts[:-1])  # exactly 1 in total
    ends = data.draw(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=len(pcts), max_size=len(pcts)))
    f = combine_scheds(pcts, [sched_lin(a, b) for a, b in ends])
    starts = [0.] + list(itertools.accumulate(pcts))[:-1]
    for s, p, (a, b) in zip(starts, pcts, ends):
        assert _close(f(s), a)                                      # a phase starts at its own start
        assert math.isclose(f(s + p / 2), (a + b) / 2, abs_tol=1e-9)  # and is halfway through halfway along
    assert _close(f(1.), ends[-1][1])

@bounded(150)
@given(st.floats(1e-4, 10), st.floats(0.05, 0.95), st.floats(1.5, 100), st.floats(1.5, 1e5), st.lists(st.floats(0, 1), min_size=2, max_size=30))
def test_one_cycle_shape(max_lr, pct, div, fdiv, ps):
    "Up from max_lr/div to max_lr at pct_start, then down to max_lr/div/final_div; never above max_lr."
    f = one_cycle(max_lr, pct, div, fdiv)
    assert _close(f(0.), max_lr / div) and _close(f(pct), max_lr) and _close(f(1.), max_lr / div / fdiv)
    up, down = sorted(p for p in ps if p <= pct), sorted(p for p in ps if p >= pct)
    assert _monotonic([f(p) for p in up], up=True) and _monotonic([f(p) for p in down], up=False)
    assert all(f(p) <= max_lr * (1 + 1e-9) for p in ps)

@bounded(60)
@given(st.one_of(st.floats(-5, 0), st.floats(1, 5), st.just(float('nan'))))
def test_one_cycle_bad_pct_start(pct):
    "A warm-up fraction outside (0, 1) is refused by one_cycle itself, naming pct_start."
    with pytest.raises(ValueError, match='pct_start='): one_cycle(0.1, pct)

@bounded(100)
@given(st.lists(st.floats(-1, 1.5), min_size=1, max_size=5))
def test_combine_scheds_bad_pcts(pcts):
    "Percentages that are not all positive or do not sum to 1: a ValueError that shows them."
    if all(p > 0 for p in pcts) and math.isclose(sum(pcts), 1., abs_tol=1e-9): return
    with pytest.raises(ValueError, match='phase percentages'): combine_scheds(pcts, [sched_no(1, 1)] * len(pcts))

# ---------------------------------------------------------------- checkpoint files (lesson 14b): random, truncated, damaged

import os, tempfile
from pathlib import Path
from miniai.checkpoint import CheckpointError, save_checkpoint, read_checkpoint, load_checkpoint

def _ckpt_learner(fit=False):
    from miniai.learner import Learner, TrainCB
    x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), 8)
    learn = Learner(torch.nn.Linear(3, 2), (dl, dl), torch.nn.functional.cross_entropy, lr=0.1, cbs=[TrainCB()])
    if fit: learn.fit(1)
    return learn

_CKPT = {}
def _good_ckpt():
    "The bytes of one real checkpoint (made once), and the model state in it"
    if not _CKPT:
        learn = _ckpt_learner(fit=True)
        with tempfile.TemporaryDirectory() as d:
            p = save_checkpoint(learn, Path(d)/'good.pt')
            _CKPT.update(blob=p.read_bytes(), state={k: v.clone() for k, v in learn.model.state_dict().items()})
    return _CKPT['blob'], _CKPT['state']

def _load_blob(blob, name='model.pt'):
    "Write `blob` to a file and load it into a fresh Learner; return the Learner (or raise what loading raised)"
    with tempfile.TemporaryDirectory() as d:
        p = Path(d)/name
        p.write_bytes(blob)
        learn = _ckpt_learner()
        try: load_checkpoint(learn, p)
        except CheckpointError as e:
            assert str(p) in str(e), str(e)  # the message names the file
            raise
        return learn

@bounded(40)
@given(st.binary(max_size=3000))
def test_checkpoint_random_bytes(blob):
    "Random bytes are never loaded: always a CheckpointError naming the file."
    with pytest.raises(CheckpointError): _load_blob(blob, 'random.pt')

@bounded(40)
@given(st.data())
def test_checkpoint_truncated(data):
    "A checkpoint cut short anywhere (a crash while copying it, a full disk): a CheckpointError naming the file."
    blob, _ = _good_ckpt()
    n = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(CheckpointError): _load_blob(blob[:n], 'truncated.pt')

@bounded(40)
@given(st.data())
def test_checkpoint_damaged_bytes(data):
    "Bytes changed anywhere: either a CheckpointError naming the file, or (the change hit bytes nothing reads) the exact saved state."
    blob, state = _good_ckpt()
    b = bytearray(blob)
    for i in data.draw(st.lists(st.integers(0, len(b) - 1), min_size=1, max_size=4)): b[i] ^= data.draw(st.integers(1, 255))
    try: learn = _load_blob(bytes(b), 'damaged.pt')
    except CheckpointError: return
    for k, v in learn.model.state_dict().items(): assert torch.equal(v, state[k])

def test_checkpoint_intact_loads():
    blob, state = _good_ckpt()
    learn = _load_blob(blob)
    for k, v in learn.model.state_dict().items(): assert torch.equal(v, state[k])
