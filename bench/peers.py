"""The peer runners: `python bench/peers.py fastai|lightning [options]` prints one JSON line, like bench/run.py.

Each runs in its own venv (`python bench/bench.py setup-peers` makes bench/_venvs/PEER), with the checkout on
PYTHONPATH. Both train what `raw` trains: the same model from the same initial weights (built by run.py's
`get_model` after `torch.manual_seed(seed)`), batch size, training order (one
`torch.randperm(n, generator=torch.Generator().manual_seed(seed))` per epoch) and validation set, over the same
in-memory tensors fetched a batch at a time, with AdamW and a one-cycle schedule (AdamW + torch's `OneCycleLR` stepped
every batch for Lightning; fastai's own `fit_one_cycle`, with the same shape, for fastai):

- `fastai`: `fastai.basics` `Learner` with its default callbacks (progress bar, recorder), the `accuracy` metric and
  `learn.fit_one_cycle(epochs, lr)`; the optimizer is fastai's `Adam` with decoupled weight decay 0.01 (AdamW) and
  torch AdamW's betas and eps;
- `lightning`: a `LightningModule` (`training_step`, `validation_step` logging loss and accuracy, `configure_optimizers`
  returning AdamW and `OneCycleLR` with interval 'step') and `Trainer(max_epochs, accelerator='cpu', devices=1,
  logger=False, enable_checkpointing=False, num_sanity_val_steps=0)` with its default progress bar.

Epochs are timed by callbacks of each framework, from the start of the training pass to the end of the validation
pass, as `raw`'s are.
"""
from __future__ import annotations
import importlib.util, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location('bench_run', HERE/'run.py')
R = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(R)  # run.py: parse_args, Window, get_model, load_tensors, new_result, finish_result (bench/ is not a package)


class EpochBatches:
    """Batches of indices for a torch `DataLoader(TensorDataset, sampler=..., batch_size=None)`: one
    `torch.randperm(n, generator=g)` per epoch when `g` is given (the order `raw` uses), else 0..n-1 in order.
    The `TensorDataset` is then indexed with a whole batch at a time, as `raw` indexes its tensors."""
    def __init__(self, n, bs, g=None): self.n, self.bs, self.g = n, bs, g
    def __len__(self): return (self.n + self.bs - 1)//self.bs
    def __iter__(self):
        import torch
        idxs = torch.randperm(self.n, generator=self.g) if self.g is not None else torch.arange(self.n)
        for i in range(len(self)): yield idxs[i*self.bs:(i+1)*self.bs]


def tensor_loaders(a, g):
    "Training and validation `torch.utils.data.DataLoader`s over the in-memory tensors: raw's batches, in raw's order"
    from torch.utils.data import DataLoader, TensorDataset
    xt, yt, xv, yv = R.load_tensors(a.small)
    dl = lambda x, y, g: DataLoader(TensorDataset(x, y), sampler=EpochBatches(len(x), a.bs, g), batch_size=None)
    return dl(xt, yt, g), dl(xv, yv, None)


class _Clock:
    "One epoch's measurements, started and stopped by the framework's callbacks"
    def __init__(self, res): self.res = res
    def start(self): self.w, self.t0, self.t1 = R.Window().start(), time.perf_counter(), None
    def end_train(self): self.t1 = time.perf_counter()
    def stop(self, valid_loss, accuracy):
        self.res['epochs'].append(dict(train_s=self.t1 - self.t0, valid_loss=float(valid_loss), accuracy=float(accuracy),
                                       **self.w.stop()))


def run_fastai(a, model, g, res):
    "fastai's `Learner.fit_one_cycle`, with fastai's defaults where they do not change the computation"
    from functools import partial
    import torch.nn.functional as F
    import fastai
    from fastai.basics import Adam, Callback, DataLoaders, Learner, accuracy
    import fastai.callback.schedule  # Learner.fit_one_cycle (fastai.basics leaves it out)
    res['framework'] = f'fastai {fastai.__version__}'
    train_dl, valid_dl = tensor_loaders(a, g)
    res['n_train'], res['n_valid'] = len(train_dl.dataset), len(valid_dl.dataset)
    dls = DataLoaders(train_dl, valid_dl, device='cpu')  # plain torch DataLoaders, as fastai's docs show for PyTorch code
    clock = _Clock(res)
    class EpochStart(Callback):
        order = -10**6  # before every other callback
        def before_epoch(self): clock.start()
    class EpochEnd(Callback):
        order = 10**6   # after every other callback (the recorder's included)
        def after_train(self): clock.end_train()
        def after_epoch(self):
            names, vals = self.recorder.metric_names, self.recorder.log
            clock.stop(vals[names.index('valid_loss')], vals[names.index('accuracy')])
    # AdamW: fastai's Adam decouples the weight decay by default; torch AdamW's betas, eps and weight decay (0.01,
    # also on biases: wd_bn_bias=True), so that the update is AdamW's
    opt = partial(Adam, sqr_mom=0.999, eps=1e-8, wd=0.01, decouple_wd=True)
    learn = Learner(dls, model, loss_func=F.cross_entropy, opt_func=opt, metrics=accuracy, wd=0.01, wd_bn_bias=True,
                    cbs=[EpochStart(), EpochEnd()])
    # fastai's one-cycle schedule (cosine warm-up from lr/div, cosine down to lr/div_final, momentum 0.95-0.85-0.95),
    # set to the shape of torch's OneCycleLR defaults: 30% warm-up, div 25, final lr = lr/25/1e4
    learn.fit_one_cycle(a.epochs, a.lr, div=25., div_final=25e4, pct_start=0.3)


def run_lightning(a, model, g, res):
    "A LightningModule and `Trainer.fit`, with Lightning's defaults where they do not change the computation"
    import torch, torch.nn.functional as F
    from torch import optim
    import lightning as L
    res['framework'] = f'lightning {L.__version__}'
    train_dl, valid_dl = tensor_loaders(a, g)
    res['n_train'], res['n_valid'] = len(train_dl.dataset), len(valid_dl.dataset)
    total_steps = a.epochs*len(train_dl)

    class Module(L.LightningModule):
        def __init__(self, model):
            super().__init__()
            self.model = model
        def forward(self, x): return self.model(x)
        def training_step(self, batch, batch_idx):
            xb, yb = batch
            loss = F.cross_entropy(self(xb), yb)
            self.log('train_loss', loss, prog_bar=True, batch_size=len(yb))
            return loss
        def validation_step(self, batch, batch_idx):
            xb, yb = batch
            preds = self(xb)
            # epoch values: means over batches weighted by batch_size, i.e. over the whole validation set
            self.log('valid_loss', F.cross_entropy(preds, yb), prog_bar=True, batch_size=len(yb))
            self.log('accuracy', (preds.argmax(1) == yb).float().mean(), prog_bar=True, batch_size=len(yb))
        def configure_optimizers(self):
            opt = optim.AdamW(self.parameters(), lr=a.lr)
            sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=total_steps)
            return dict(optimizer=opt, lr_scheduler=dict(scheduler=sched, interval='step'))

    clock = _Clock(res)
    class EpochTimer(L.Callback):
        "Starts at the training epoch's start; stops once both its training and its validation pass are over"
        def on_train_epoch_start(self, trainer, pl_module): clock.start(); self.done = set()
        def on_validation_start(self, trainer, pl_module):
            if trainer.training or trainer.state.fn == 'fit': clock.end_train()
        def _end(self, trainer, what):
            self.done.add(what)
            if self.done == {'train', 'valid'}:
                m = trainer.callback_metrics
                clock.stop(m['valid_loss'], m['accuracy'])
        def on_validation_end(self, trainer, pl_module): self._end(trainer, 'valid')
        def on_train_epoch_end(self, trainer, pl_module): self._end(trainer, 'train')

    trainer = L.Trainer(max_epochs=a.epochs, accelerator='cpu', devices=1, logger=False, enable_checkpointing=False,
                        num_sanity_val_steps=0, callbacks=[EpochTimer()])
    trainer.fit(Module(model), train_dataloaders=train_dl, val_dataloaders=valid_dl)


def main(argv=None):
    a = R.parse_args(argv)
    if a.runner not in ('fastai', 'lightning'): raise SystemExit(f'{a.runner}: run it with bench/run.py')
    t_start = time.perf_counter()
    import torch
    # the framework's import: before the thread count is set (nothing may change it after) and outside the fit
    if a.runner == 'fastai': import fastai.basics, fastai.callback.schedule
    else: import lightning
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = R.get_model(a.model, a.nfs)
    g = torch.Generator().manual_seed(a.seed)
    res = R.new_result(a, model)
    w = R.Window().start()
    (run_fastai if a.runner == 'fastai' else run_lightning)(a, model, g, res)
    fit = w.stop()
    if torch.get_num_threads() != a.threads:  # the comparison fixes the thread count: the framework must not change it
        raise SystemExit(f'{a.runner}: torch uses {torch.get_num_threads()} threads after the fit, not {a.threads}')
    if len(res['epochs']) != a.epochs: raise SystemExit(f"{a.runner}: {len(res['epochs'])} epochs timed, {a.epochs} expected")
    R.finish_result(a, res, fit, t_start)


if __name__ == '__main__': main()
