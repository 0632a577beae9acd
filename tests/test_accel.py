"""Tests of miniai.accel and miniai.checkpoint that do not fit in the notebooks: two training processes, and checkpoints under failure.

The two-process test launches a real torchrun job on this machine (gloo backend, a free local port,
nothing outside the machine is contacted) on synthetic data, in a few seconds.
"""
import json, math, os, sys, textwrap
from functools import partial
from pathlib import Path
import pytest
import torch
from torch import nn
import torch.nn.functional as F
from torch.optim import lr_scheduler
from torch.utils.data import DataLoader, TensorDataset
from miniai.accel import AccelerateCB, MixedPrecision, launch_local
from miniai.checkpoint import CheckpointCB, CheckpointError, ResumeCB, load_checkpoint, read_checkpoint, save_checkpoint
from miniai.activations import set_seed
from miniai.datasets import DataLoaders, TensorLoader
from miniai.learner import Accuracy, Callback, Learner, MetricsCB, TrainCB
from miniai.sched import ParamSchedCB, one_cycle
from miniai.sgd import BatchSchedCB

ROOT = Path(__file__).resolve().parent.parent

def _data(n_train=256, n_valid=203, seed=0):
    "A 4-class problem that a small MLP learns: labels from a random linear map of 8 features"
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_valid, 8, generator=g)
    y = (x @ torch.randn(8, 4, generator=g)).argmax(1)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]

DDP_SCRIPT = '''
import json, os, sys, torch, torch.nn.functional as F
from torch import nn
sys.path.insert(0, os.environ['TEST_DIR'])
from test_accel import _data
from miniai.accel import AccelerateCB
from miniai.datasets import DataLoaders, TensorLoader
from miniai.learner import Accuracy, Callback, Learner, MetricsCB

class SeenCB(Callback):
    "The indices of the training items this process gets, per epoch, before AccelerateCB gathers them"
    order = AccelerateCB.order - 1
    def before_fit(self, learn): self.seen = []
    def before_epoch(self, learn):
        if learn.training: self.seen.append([])
    def after_predict(self, learn):
        if learn.training: self.seen[-1] += learn.batch[2].tolist()

rank = int(os.environ['RANK'])
xt, yt, xv, yv = _data()
torch.manual_seed(100 + rank)  # different starting weights in each process: DDP must broadcast rank 0's
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
torch.manual_seed(0)
dls = DataLoaders(TensorLoader(xt, yt, torch.arange(len(yt)), batch_size=16, shuffle=True), TensorLoader(xv, yv, batch_size=32))
acb, metrics, seen = AccelerateCB(cpu=True), MetricsCB(Accuracy()), SeenCB()
metrics.log_fn = lambda row: None
learn = Learner(model, dls, lambda p, y, *_: F.cross_entropy(p, y), lr=1e-2, opt_func=torch.optim.AdamW, cbs=[acb, metrics, seen])
learn.fit(2)
with torch.no_grad():
    preds = learn.model(xv)
    full = dict(acc=(preds.argmax(1) == yv).float().mean().item(), loss=F.cross_entropy(preds, yv).item())
json.dump(dict(world=acb.acc.num_processes, history=metrics.history, seen=seen.seen, full=full,
               weights=[p.tolist() for p in learn.model.parameters()]), open(f"{sys.argv[1]}/rank{rank}.json", "w"))
'''

def test_two_processes(tmp_path):
    "Two CPU processes: identical final weights, disjoint halves of each epoch, metrics over the whole validation set"
    script = tmp_path/'ddp.py'
    script.write_text(DDP_SCRIPT)
    env = dict(PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]), TEST_DIR=str(Path(__file__).parent))
    res = launch_local(script, nproc=2, args=[tmp_path], timeout=100, env=env)
    assert res.returncode == 0, res.stderr[-5000:]
    r0, r1 = [json.loads((tmp_path/f'rank{i}.json').read_text()) for i in range(2)]
    assert r0['world'] == r1['world'] == 2
    assert r0['weights'] == r1['weights']
    assert r0['history'] == r1['history']
    for s0, s1 in zip(r0['seen'], r1['seen']):  # each epoch: two disjoint halves of the 256 items
        assert len(s0) == len(s1) == 128 and not set(s0) & set(s1) and set(s0) | set(s1) == set(range(256))
    assert r0['seen'][0] != r0['seen'][1]  # reshuffled between epochs
    for r in (r0, r1):
        last = r['history'][-1]
        assert last['train'] == 'eval'
        assert math.isclose(last['Accuracy'], r['full']['acc'], abs_tol=1e-6), (last, r['full'])
        assert math.isclose(last['loss'], r['full']['loss'], rel_tol=1e-5), (last, r['full'])

N_EPOCHS, BS = 4, 16

class CrashCB(Callback):
    "Raise at batch `it` of the training pass of epoch `epoch`"
    def __init__(self, epoch, it): self.epoch, self.it = epoch, it
    def before_batch(self, learn):
        if learn.training and learn.epoch == self.epoch and learn.iter == self.it: raise RuntimeError('simulated crash')

def _run(seed, folder, loader, extra_cbs=(), resume=None, n_epochs=N_EPOCHS, sched='torch'):
    "Build model, data and callbacks from `seed`; fit with checkpoints in `folder`, under OneCycleLR or (sched='ours') one_cycle"
    set_seed(seed, deterministic=True)
    xt, yt, xv, yv = _data()
    if loader == 'tensorloader':
        train = TensorLoader(xt, yt, batch_size=BS, shuffle=True, generator=torch.Generator().manual_seed(seed))
    else: train = DataLoader(TensorDataset(xt, yt), batch_size=BS, shuffle=True)  # shuffled from the global generator
    dls = DataLoaders(train, TensorLoader(xv, yv, batch_size=64))
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 4))
    metrics = MetricsCB(Accuracy()); metrics.log_fn = lambda row: None
    steps = n_epochs * math.ceil(len(xt)/BS)
    sched_cb = (BatchSchedCB(partial(lr_scheduler.OneCycleLR, max_lr=1e-2, total_steps=steps)) if sched == 'torch'
                else ParamSchedCB(lr=one_cycle(1e-2)))
    cbs = [TrainCB(), metrics, sched_cb, CheckpointCB(folder, monitor='Accuracy'), *extra_cbs]
    if resume is not None: cbs.append(ResumeCB(resume))
    learn = Learner(model, dls, F.cross_entropy, lr=1e-2, opt_func=partial(torch.optim.AdamW, weight_decay=0.01), cbs=cbs)
    try: learn.fit(n_epochs)
    finally: set_seed(0)
    return learn

@pytest.mark.parametrize('loader,sched', [('tensorloader', 'torch'), ('torch', 'torch'), ('tensorloader', 'ours')])
def test_resume_equals_uninterrupted(tmp_path, loader, sched):
    "Also with lesson 11's ParamSchedCB (as `fit_one_cycle` uses): its position is saved and restored"
    plain = _run(0, tmp_path/'plain', loader, sched=sched)
    with pytest.raises(RuntimeError, match='simulated crash'):
        _run(0, tmp_path/'crashed', loader, extra_cbs=[CrashCB(epoch=2, it=3)], sched=sched)
    assert read_checkpoint(tmp_path/'crashed/last.pt')['epoch'] == 2
    resumed = _run(7, tmp_path/'crashed', loader, resume=tmp_path/'crashed/last.pt', sched=sched)
    assert resumed.opt.param_groups[0]['lr'] == plain.opt.param_groups[0]['lr']
    for (k, a), b in zip(plain.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert resumed.metrics.history[-1] == plain.metrics.history[-1]
    assert [r['epoch'] for r in resumed.metrics.history] == [2, 2, 3, 3]
    ck_plain, ck_resumed = [next(cb for cb in l.cbs if isinstance(cb, CheckpointCB)) for l in (plain, resumed)]
    assert (ck_resumed.best, ck_resumed.best_epoch) == (ck_plain.best, ck_plain.best_epoch)  # the best carried over
    for nm in ('best.pt', 'last.pt'):
        assert read_checkpoint(tmp_path/'plain'/nm)['extra'] == read_checkpoint(tmp_path/'crashed'/nm)['extra']

def test_resume_without_rng_differs(tmp_path):
    "The control: the same resume with the RNG states left alone ends elsewhere (the test above is not vacuous)"
    plain = _run(0, tmp_path/'plain', 'tensorloader')
    class NoRngResume(ResumeCB):
        def before_epoch(self, learn):
            if self.ckpt is None: return
            load_checkpoint(learn, self.path, rng=False); self.ckpt = None
    with pytest.raises(RuntimeError): _run(0, tmp_path/'half', 'tensorloader', extra_cbs=[CrashCB(epoch=2, it=0)])
    other = _run(7, tmp_path/'half', 'tensorloader', extra_cbs=[NoRngResume(tmp_path/'half/last.pt')])
    assert not all(torch.equal(a, b) for a, b in zip(plain.model.state_dict().values(), other.model.state_dict().values()))

def _fitted(tmp_path):
    learn = _run(0, tmp_path/'ck', 'tensorloader', n_epochs=2)
    return learn, tmp_path/'ck/last.pt'

def test_corrupted_checkpoint_detected(tmp_path):
    learn, path = _fitted(tmp_path)
    raw = path.read_bytes()
    bad = tmp_path/'bad.pt'
    for pos in (len(raw)//2, len(raw)//3, len(raw) - 2000):  # bytes inside the stored tensors and the record
        b = bytearray(raw); b[pos] ^= 0x55
        bad.write_bytes(bytes(b))
        with pytest.raises(CheckpointError, match='bad.pt'): load_checkpoint(learn, bad)
    for n in (0, 10, len(raw)//2, len(raw) - 1):
        bad.write_bytes(raw[:n])
        with pytest.raises(CheckpointError, match='bad.pt'): read_checkpoint(bad)
    bad.write_bytes(b'not a checkpoint at all')
    with pytest.raises(CheckpointError, match='bad.pt'): read_checkpoint(bad)
    torch.save({'model': learn.model.state_dict()}, bad)  # a plain torch file: not ours
    with pytest.raises(CheckpointError, match='not a miniai checkpoint'): read_checkpoint(bad)
    load_checkpoint(learn, path)  # the original is fine

def test_crash_during_save_keeps_previous(tmp_path, monkeypatch):
    learn, path = _fitted(tmp_path)
    good = path.read_bytes()
    def broken_save(obj, f):
        f.write(b'PK\x03\x04' + b'x'*5000)  # half a file
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(torch, 'save', broken_save)
    with pytest.raises(OSError, match='No space left'): save_checkpoint(learn, path)
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert sorted(p.name for p in path.parent.iterdir()) == ['best.pt', 'last.pt']  # no temporary file left
    load_checkpoint(learn, path)

def test_incompatible_model(tmp_path):
    learn, path = _fitted(tmp_path)
    other = Learner(nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Dropout(), nn.Linear(64, 4), nn.Linear(4, 4)), learn.dls)
    with pytest.raises(CheckpointError) as e: load_checkpoint(other, path)
    msg = str(e.value)
    assert 'last.pt' in msg and 'mismatched shapes: 0.weight (32, 8) saved, (64, 8) in the model' in msg
    assert 'missing keys: 4.weight, 4.bias' in msg and '3.weight (4, 32) saved, (4, 64)' in msg

def test_checkpoint_contents(tmp_path):
    learn, path = _fitted(tmp_path)
    ck = read_checkpoint(path)
    assert {'model', 'opt', 'scheds', 'scaler', 'epoch', 'rng', 'miniai_version'} <= set(ck)
    assert ck['epoch'] == 2 and len(ck['scheds']) == 1 and set(ck['rng']['loaders']) == {'train'}
    assert {'python', 'numpy', 'torch', 'cuda'} <= set(ck['rng'])

def test_mixed_precision_cpu():
    "bf16 inside, float32 loss; the fp16 branch uses the scaler in the order scale, backward, step, update"
    xt, yt, xv, yv = _data()
    log = []
    class Spy(Callback):
        order = MixedPrecision.order + 1
        def before_fit(self, learn):
            mp = next(cb for cb in learn.cbs if isinstance(cb, MixedPrecision))
            inner = mp.grad_scaler
            if not inner.is_enabled(): return  # bf16: a disabled scaler that hands loss and step through
            class Rec:
                def scale(self, loss): log.append('scale'); return inner.scale(loss)
                def step(self, opt): log.append('step'); return inner.step(opt)
                def update(self): log.append('update'); return inner.update()
            mp.grad_scaler = Rec()
        def after_predict(self, learn): log.append(('preds', learn.preds.dtype))
        def after_loss(self, learn): log.append(('loss', learn.loss.dtype))
        def after_backward(self, learn): log.append('backward')
    hidden = []
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4))
    model[0].register_forward_hook(lambda m, i, o: hidden.append(o.dtype))
    learn = Learner(model, ([(xt, yt)], []), F.cross_entropy, lr=1e-2, opt_func=torch.optim.AdamW, cbs=[MixedPrecision(), Spy()])
    learn.fit(1)
    assert hidden == [torch.bfloat16] and log == [('preds', torch.float32), ('loss', torch.float32), 'backward']
    log.clear()
    learn = Learner(model, ([(xt, yt)]*2, []), F.cross_entropy, lr=1e-2, opt_func=torch.optim.AdamW,
                    cbs=[MixedPrecision(dtype=torch.float16), Spy()])
    learn.fit(1)
    assert log == [('preds', torch.float32), ('loss', torch.float32), 'scale', 'backward', 'step', 'update']*2

def test_resume_finished_run_restores_weights(tmp_path):
    "Resuming from a checkpoint with every epoch done trains nothing but still restores the state"
    learn, path = _fitted(tmp_path)
    other = _run(5, tmp_path/'again', 'tensorloader', n_epochs=2, resume=path)
    assert [r['epoch'] for r in other.metrics.history] == []
    assert all(torch.equal(a, b) for a, b in zip(learn.model.state_dict().values(), other.model.state_dict().values()))

# ---------------------------------------------------------------------------------------------
# The fast path of lesson 14: channels-last and torch.compile give eager's results, with the lesson callbacks.
# A two-block ResNet on random 28x28 images keeps each compile to seconds.

from miniai.accel import ChannelsLastCB, CompileCB
from miniai.activations import ActivationStats
from miniai.resnet import get_resnet

def _images(n_train=96, n_valid=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(n_train + n_valid, 1, 28, 28, generator=g), torch.randint(0, 10, (n_train + n_valid,), generator=g)
    dl = lambda a, b: [(x[i:i+32], y[i:i+32]) for i in range(a, b, 32)]  # the last batch of each is shorter
    return dl(0, n_train), dl(n_train, n_train + n_valid)

class _Losses(Callback):
    order = 10
    def before_fit(self, learn): self.train, self.valid = [], []
    def after_batch(self, learn): (self.train if learn.training else self.valid).append(learn.loss.item())

def _fast_fit(*cbs, n_epochs=2, opt_func=torch.optim.AdamW):
    set_seed(1)
    rec = _Losses()
    learn = Learner(get_resnet(nfs=(8, 16)), _images(), F.cross_entropy, lr=1e-2, opt_func=opt_func, cbs=[*cbs, rec])
    learn.fit(n_epochs)
    return rec, learn

def test_channels_last_and_compile_match_eager():
    eager, _ = _fast_fit(TrainCB())
    for cbs in [(ChannelsLastCB(),), (CompileCB(),), (ChannelsLastCB(), CompileCB())]:
        rec, learn = _fast_fit(TrainCB(), *cbs, opt_func=partial(torch.optim.AdamW, fused=True))
        names = [type(cb).__name__ for cb in cbs]
        assert len(rec.train) == len(eager.train) == 6 and len(rec.valid) == len(eager.valid) == 4, names
        for a, b in zip(eager.train + eager.valid, rec.train + rec.valid): assert math.isclose(a, b, rel_tol=1e-3), (names, a, b)
        assert type(learn.model) is nn.Sequential, names  # the Learner's own module after fit, not the compiled one

def test_compile_cb_keeps_compiled_model_and_restores_after_error():
    ccb, seen = CompileCB(), []
    class Boom(Callback):
        def after_batch(self, learn):
            seen.append(type(learn.model).__name__)
            if len(seen) == 2: raise RuntimeError('boom')
    set_seed(1)
    learn = Learner(get_resnet(nfs=(8, 16)), _images(), F.cross_entropy, lr=1e-2, opt_func=torch.optim.AdamW, cbs=[TrainCB(), ccb])
    with pytest.raises(RuntimeError, match='boom'): learn.fit(1, cbs=Boom())
    assert seen == ['OptimizedModule']*2 and type(learn.model) is nn.Sequential and ccb.model is None
    compiled = ccb.compiled
    learn.fit(1)
    assert ccb.compiled is compiled  # the same module: compiled once, reused by the next fit
    learn.model = get_resnet(nfs=(8, 16))
    learn.fit(1, reset_opt=True)
    assert ccb.compiled is not compiled and ccb.compiled._orig_mod is learn.model  # a new module is compiled anew

def test_compile_with_hooks_runs_them_eagerly():
    "ActivationStats' hooks need Python between the layers: CompileCB warns and those passes run eagerly, with eager's statistics"
    hooked = lambda m: isinstance(m, nn.BatchNorm2d)
    st_eager = ActivationStats(hooked)
    _fast_fit(TrainCB(), st_eager, n_epochs=1)
    st = ActivationStats(hooked)
    with pytest.warns(UserWarning, match='CompileCB: hooks on') as ws: _fast_fit(TrainCB(), st, CompileCB(), n_epochs=1)
    assert len([w for w in ws if 'CompileCB' in str(w.message)]) == 1  # once per fit
    assert len(st.hooks) == len(st_eager.hooks) > 0
    for a, b in zip(st.hooks, st_eager.hooks): assert [float(v) for v in a.stats[0]] == [float(v) for v in b.stats[0]]
    rec, learn = _fast_fit(TrainCB(), CompileCB(), n_epochs=1)  # hooks removed after their fit: compiled again, no warning
    assert type(learn.model) is nn.Sequential

def test_compile_and_channels_last_with_mixed_precision():
    eager, _ = _fast_fit(MixedPrecision(), n_epochs=1)
    rec, _ = _fast_fit(MixedPrecision(), ChannelsLastCB(), CompileCB(), n_epochs=1)
    # bf16 keeps 8 bits of mantissa: the same steps, rounded differently
    for a, b in zip(eager.train + eager.valid, rec.train + rec.valid): assert math.isclose(a, b, rel_tol=3e-2), (a, b)

def test_compiled_model_checkpoints_plain_weights(tmp_path):
    "A checkpoint written during a compiled, channels-last fit holds plain weights that load into a plain model"
    rec, learn = _fast_fit(TrainCB(), ChannelsLastCB(), CompileCB(), MetricsCB(), CheckpointCB(tmp_path))
    ck = read_checkpoint(tmp_path/'last.pt')
    assert not any('_orig_mod' in k for k in ck['model']), list(ck['model'])[:3]
    plain = get_resnet(nfs=(8, 16))
    plain.load_state_dict(ck['model'])
    x = _images()[1][0][0]
    learn.model.eval(); plain.eval()
    with torch.no_grad(): assert torch.allclose(plain(x), learn.model(x), atol=1e-5)
    other = Learner(get_resnet(nfs=(8, 16)), _images(), F.cross_entropy, lr=1e-2, opt_func=torch.optim.AdamW,
                    cbs=[TrainCB(), CompileCB()])
    load_checkpoint(other, tmp_path/'last.pt')
    assert all(torch.equal(a, b) for a, b in zip(other.model.state_dict().values(), plain.state_dict().values()))
