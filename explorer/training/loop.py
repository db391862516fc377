"""The training loop: small datasets live on the device as tensors, no DataLoader workers.

Owns: one training run from setup to summary (train = _setup, which carries out the run's plan
from explorer.training.plan and builds the network (_build), then _epoch per epoch, each made of
_step calls (with _log_step's sanity checks) and one evaluation, then _completed/_finish), and
turning every way a run can end (done, cancelled, diverged, out of memory, a full disk, any
error) into a summary.json. Data preparation lives in explorer.training.prepare.

One call of `train` runs one TrainConfig on one spec and writes a run directory (runs.py).
As the plan says: channels_last on both devices; on CUDA bf16 autocast and cudnn.benchmark; on
the CPU one intra-op thread for small networks (restored when the run ends). Losses and
accuracies stay on the device between log steps, so the GPU is not synchronised every step.
Sanity checks from practice: the first loss is compared with ln(classes); a loss above 3x its
start, or NaN, stops the run as diverged; out-of-memory stops it as failed with advice.
"""

from __future__ import annotations

import errno
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from explorer.core.analysis import DTYPES
from explorer.core.build import build
from explorer.core.spec import NetworkSpec
from explorer.errors import UserError
from explorer.training import transfer
from explorer.training.config import TrainConfig
from explorer.training.initialise import apply_init
from explorer.training.plan import RunPlan, plan_run, resolve_device
from explorer.training.prepare import PreparedData, load_run_dataset, prepare_data
from explorer.training.runs import Heartbeat, MetricsWriter, write_json_atomic
from explorer.units import format_bytes

DIVERGENCE_FACTOR = 3.0     # stop when the loss exceeds 3x its first value (cs231n's rule of thumb)
EVAL_BATCH = 1024


class StopRun(Exception):
    """Ends a run early with a status other than failed ("diverged", "cancelled") and a message."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status        # the summary's status
        self.message = message      # what happened and what to change


def _scheduler(opt, cfg: TrainConfig, steps_per_epoch: int):
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    if cfg.schedule == "onecycle":
        # one peak per parameter group, so loaded layers keep their lower rate (transfer.param_groups)
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups],
                                                   total_steps=total)
    if cfg.schedule == "step":
        period = (cfg.step_epochs or max(1, cfg.epochs // 3)) * steps_per_epoch
        return torch.optim.lr_scheduler.StepLR(opt, step_size=period, gamma=cfg.gamma)
    return None


def _autocast(plan: RunPlan) -> Callable[[], Any]:
    """The plan's precision as a context factory: bf16 autocast on CUDA, none on the CPU."""
    if plan.device == "cuda":
        return lambda: torch.autocast("cuda", dtype=DTYPES[plan.dtype])
    return lambda: torch.autocast("cpu", enabled=False)


def _evaluate(model: nn.Module, data: PreparedData, x: torch.Tensor, y: torch.Tensor, device, autocast,
              channels_last: bool, label_smoothing: float) -> dict:
    model.eval()
    loss_sum = torch.zeros((), device=device)
    top1 = torch.zeros((), device=device, dtype=torch.long)
    top5 = torch.zeros((), device=device, dtype=torch.long)
    k = min(5, int(y.max().item()) + 1 if len(y) else 1)
    with torch.no_grad():
        for i in range(0, len(x), EVAL_BATCH):
            xb = (x[i:i + EVAL_BATCH].float() / 255 - data.mean) / data.std
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yb = y[i:i + EVAL_BATCH]
            with autocast():
                logits = model(xb)
            logits = logits.float()
            loss_sum += F.cross_entropy(logits, yb, reduction="sum", label_smoothing=label_smoothing)
            topk = logits.topk(min(5, logits.shape[1]), dim=1).indices
            top1 += (topk[:, 0] == yb).sum()
            top5 += (topk == yb[:, None]).any(dim=1).sum()
    model.train()
    n = max(1, len(x))
    return {"val_loss": loss_sum.item() / n, "val_acc": top1.item() / n, "val_top5": top5.item() / n, "k": k}


def _save_checkpoint(model: nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        save_file(state, str(tmp))
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)  # a full disk must not leave half a checkpoint behind
        if not isinstance(e, OSError) and f"os error {errno.ENOSPC}" in str(e):  # safetensors' own error type
            raise OSError(errno.ENOSPC, f"No space left on device writing {path.name}") from e
        raise


DISK_FULL = "the disk is full: the run stopped (free space in the runs folder and start it again)"


@dataclass
class _Loop:
    """Everything one run needs between steps: set up once by _setup, advanced by _step/_epoch."""

    spec: NetworkSpec                 # the network fitted to the dataset (as built)
    cfg: TrainConfig
    run_dir: Path
    emit: Callable[..., None]         # writes one metrics event (and tells on_event)
    device: torch.device
    data: PreparedData                # images on the device at the network's input size
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any                    # a torch LR scheduler stepped every optimizer step, or None
    autocast: Callable[[], Any]       # the plan's precision: a context manager factory
    augment: Callable[..., torch.Tensor]  # uint8 batch -> augmented uint8 batch
    generator: torch.Generator        # CPU generator: shuffling and augmentation (seeded)
    num_classes: int
    expected: float                   # ln(classes): the loss of uniform guesses
    predicted: int                    # predicted training memory (bytes), from the plan
    steps_per_epoch: int
    total_steps: int
    channels_last: bool = False       # batches in channels_last memory format (the plan's choice)
    transfer_notices: tuple[str, ...] = ()  # what loading trained weights and freezing did (transfer.prepare)
    step: int = 0                     # optimizer steps taken
    first_loss: float | None = None   # the first logged loss: the divergence check's reference
    best: float = -1.0                # best validation accuracy so far
    run_loss: torch.Tensor | None = None       # summed loss since the last log step (on the device)
    run_correct: torch.Tensor | None = None    # correct predictions since the last log step (on the device)
    run_seen: int = 0                          # images since the last log step
    window_start: float = 0.0                  # perf_counter s; the images/s window
    window_images: int = 0                     # images in the images/s window
    train_start: float = 0.0                   # perf_counter s
    eval_seconds: float = 0.0                  # time spent evaluating and checkpointing (s)
    images_trained: int = 0
    stop_reason: str | None = None             # set when the time limit ends the run early
    started: float = field(default_factory=time.time)  # unix s

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def n(self) -> int:
        return len(self.data.x_train)


def train(spec: NetworkSpec, cfg: TrainConfig, run_dir: Path,
          on_event: Callable[[dict], None] | None = None) -> dict:
    """Train `spec` with `cfg`, writing everything into `run_dir`; returns the summary dict.

    Never raises for a run that fails (bad config, diverged, out of memory, a full disk): the
    summary says so. A heartbeat thread marks the run alive while this function runs.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"status": "failed", "started": time.time(), "best_val_acc": None, "epochs_done": 0,
                     "dataset": cfg.dataset, "name": spec.name}
    threads = torch.get_num_threads()  # the plan may set one thread (_setup); this process gets its own back
    with Heartbeat(run_dir), _threads_restored(threads):
        metrics = None
        try:
            metrics = MetricsWriter(run_dir)

            def emit(event: str, **fields) -> None:
                record = metrics.write(event, **fields)
                if on_event:
                    on_event(record)

            loop = _setup(spec, cfg, run_dir, emit, summary)
            for epoch in range(1, cfg.epochs + 1):
                if _epoch(loop, epoch, summary):
                    break
            _completed(loop, summary)
        except BaseException as e:  # noqa: BLE001 - every ending becomes a summary (KeyboardInterrupt re-raised)
            _record_failure(e, spec, cfg, summary)
            if not isinstance(e, Exception):
                _finish(spec, cfg, run_dir, metrics, summary, on_event)
                raise
        return _finish(spec, cfg, run_dir, metrics, summary, on_event)


@contextmanager
def _threads_restored(threads: int) -> Iterator[None]:
    """Puts torch's intra-op thread count back to `threads` when the run ends, however it ends."""
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _setup(spec: NetworkSpec, cfg: TrainConfig, run_dir: Path, emit: Callable[..., None], summary: dict) -> _Loop:
    """Load the data, carry out the run's plan (explorer.training.plan), emit the "start" event."""
    cfg.validate()
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    dataset = load_run_dataset(cfg)  # overfit mode: a stratified handful of training images
    # the weights to start from are loaded once, by transfer.prepare in _build (not checked here too)
    plan = plan_run(spec, cfg, dataset=dataset.info, device=device.type, check_transfer=False).raise_if_blocked()
    if plan.cpu_threads:
        torch.set_num_threads(plan.cpu_threads)
    write_json_atomic(run_dir / "spec.json", plan.spec.to_dict())
    write_json_atomic(run_dir / "config.json", cfg.to_dict())
    data = prepare_data(dataset, plan.adapted, cfg, device)
    loop = _build(plan, cfg, run_dir, emit, device, data, summary)
    info = plan.dataset
    emit("start", device=str(device), dataset=info.name, train_size=loop.n, val_size=len(data.x_val),
         params=plan.params, macs=plan.macs, steps_per_epoch=loop.steps_per_epoch,
         total_steps=loop.total_steps, expected_initial_loss=round(loop.expected, 4),
         notices=list(plan.notices + loop.transfer_notices), predicted_train_memory_bytes=loop.predicted,
         threads=torch.get_num_threads() if device.type == "cpu" else None, channels_last=plan.channels_last)
    for notice in plan.notices + loop.transfer_notices:
        emit("warning", message=notice)
    loop.run_loss = torch.zeros((), device=device)
    loop.run_correct = torch.zeros((), device=device, dtype=torch.long)
    loop.window_start = loop.train_start = time.perf_counter()
    loop.model.train()
    return loop


def _build(plan: RunPlan, cfg: TrainConfig, run_dir: Path, emit: Callable[..., None], device: torch.device,
           data: PreparedData, summary: dict) -> _Loop:
    """The network, optimizer and schedule on the device as the plan says (memory format, threads)."""
    from explorer.data.augment import Augment

    if plan.device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    model = apply_init(build(plan.spec), cfg.init).to(device)   # on the run's seed, before loaded weights
    notices = transfer.prepare(model, cfg, summary)  # trained weights to start from, what is frozen, lineage
    if plan.channels_last:
        model = model.to(memory_format=torch.channels_last)
    summary.update(params=plan.params, macs=plan.macs)
    optimizer = cfg.make_optimizer(transfer.param_groups(model, cfg))  # trainable only; loaded layers at lr x scale
    steps_per_epoch = max(1, math.ceil(len(data.x_train) / cfg.batch_size))
    classes = plan.spec.num_classes
    return _Loop(spec=plan.spec, cfg=cfg, run_dir=run_dir, emit=emit, device=device, data=data, model=model,
                 optimizer=optimizer, scheduler=_scheduler(optimizer, cfg, steps_per_epoch), autocast=_autocast(plan),
                 # overfit mode fits a handful of images exactly: no augmentation (cs231n's sanity check)
                 augment=Augment(crop_padding=0, flip=False) if cfg.overfit else
                 Augment(crop_padding=cfg.crop_padding, flip=cfg.flip),
                 generator=torch.Generator().manual_seed(cfg.seed), num_classes=classes,
                 expected=math.log(classes), predicted=plan.memory_bytes, steps_per_epoch=steps_per_epoch,
                 total_steps=cfg.epochs * steps_per_epoch, channels_last=plan.channels_last,
                 transfer_notices=tuple(notices), started=summary["started"])


def _epoch(loop: _Loop, epoch: int, summary: dict) -> bool:
    """One pass over the training images, then evaluation and the best checkpoint. True: stop now."""
    cfg, dev = loop.cfg, loop.device
    order = torch.randperm(loop.n, generator=loop.generator).to(dev)
    epoch_loss = torch.zeros((), device=dev)
    epoch_correct = torch.zeros((), device=dev, dtype=torch.long)
    cancel_file = loop.run_dir / "CANCEL"
    for start in range(0, loop.n, cfg.batch_size):
        if cancel_file.exists():
            raise StopRun("cancelled", "cancelled by the user")
        loss, correct = _step(loop, order[start:start + cfg.batch_size], epoch)
        epoch_loss += loss  # device scalars: summed without a sync
        epoch_correct += correct
        if cfg.max_seconds is not None and time.time() - loop.started > cfg.max_seconds:
            loop.stop_reason = f"stopped after the time limit of {cfg.max_seconds:g} s"
            break
    eval_start = time.perf_counter()
    result = _evaluate(loop.model, loop.data, loop.data.x_val, loop.data.y_val, dev, loop.autocast,
                       loop.channels_last, cfg.label_smoothing)
    seen = max(1, loop.images_trained - (epoch - 1) * loop.n)
    loop.emit("epoch", epoch=epoch, step=loop.step, train_loss=round(epoch_loss.item() / seen, 5),
              train_acc=round(epoch_correct.item() / seen, 5), val_loss=round(result["val_loss"], 5),
              val_acc=round(result["val_acc"], 5), val_top5=round(result["val_top5"], 5))
    summary["epochs_done"] = epoch
    summary["final_val_acc"] = result["val_acc"]
    if result["val_acc"] > loop.best:
        loop.best = result["val_acc"]
        summary.update(best_val_acc=loop.best, best_epoch=epoch)
        _save_checkpoint(loop.model, loop.run_dir / "checkpoint.safetensors")
    # evaluation and checkpointing are not training: keep them out of images/s
    paused = time.perf_counter() - eval_start
    loop.eval_seconds += paused
    loop.window_start += paused
    return loop.stop_reason is not None


def _step(loop: _Loop, idx: torch.Tensor, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on the images `idx`; returns (loss x batch, correct) as device scalars."""
    data = loop.data
    xb = loop.augment(data.x_train[idx], generator=loop.generator)  # uint8: crops pad with black
    xb = (xb.float() / 255 - data.mean) / data.std  # (B, C, H, W) float32
    if loop.channels_last:
        xb = xb.contiguous(memory_format=torch.channels_last)
    yb = data.y_train[idx]
    with loop.autocast():
        logits = loop.model(xb)
    loss = F.cross_entropy(logits.float(), yb, label_smoothing=loop.cfg.label_smoothing)
    loop.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    loop.optimizer.step()
    if loop.scheduler is not None:
        loop.scheduler.step()
    loop.step += 1
    with torch.no_grad():
        correct = (logits.argmax(1) == yb).sum()
        weighted = loss.detach() * len(idx)
        loop.run_loss += weighted
        loop.run_correct += correct
    loop.run_seen += len(idx)
    loop.window_images += len(idx)
    loop.images_trained += len(idx)
    if loop.step == 1 or loop.step % loop.cfg.log_every == 0 or loop.step == loop.total_steps:
        _log_step(loop, loss, epoch)
    return weighted, correct


def _log_step(loop: _Loop, loss: torch.Tensor, epoch: int) -> None:
    """The sanity checks (first loss against ln(classes), divergence) and a "step" event."""
    value = loop.run_loss.item() / loop.run_seen
    if loop.first_loss is None:
        loop.first_loss = loss.item()
        if not math.isfinite(loop.first_loss):
            raise StopRun("diverged", "the first loss is not a number: check the learning rate "
                                      "and the network's last layer")
        far = abs(loop.first_loss - loop.expected) > max(0.5, 0.5 * loop.expected)
        if far and not loop.cfg.init_from:  # trained weights need not start at ln(classes)
            loop.emit("warning", step=loop.step, message=(
                f"the first loss is {loop.first_loss:.3f} but ln({loop.num_classes}) = {loop.expected:.3f} is "
                f"expected from an untrained network (uniform guesses); check the initialisation "
                f"or the last layer"))
    if not math.isfinite(value) or value > DIVERGENCE_FACTOR * loop.first_loss:
        raise StopRun("diverged", f"the loss reached {value:.3g}, more than {DIVERGENCE_FACTOR:g}x "
                                  f"its start ({loop.first_loss:.3g}): lower the learning rate "
                                  f"(now {loop.cfg.lr:g})")
    now = time.perf_counter()
    rate = loop.window_images / max(now - loop.window_start, 1e-9)  # images/s
    elapsed = now - loop.train_start  # s
    loop.emit("step", step=loop.step, epoch=epoch, loss=round(value, 5),
              acc=round(loop.run_correct.item() / loop.run_seen, 5), lr=loop.optimizer.param_groups[0]["lr"],
              images_per_s=round(rate, 1), eta_s=round(elapsed / loop.step * (loop.total_steps - loop.step), 1),
              elapsed_s=round(elapsed, 2), progress=round(loop.step / loop.total_steps, 4))
    loop.run_loss.zero_(), loop.run_correct.zero_()
    loop.run_seen = 0
    loop.window_start, loop.window_images = now, 0


def _completed(loop: _Loop, summary: dict) -> None:
    seconds = time.perf_counter() - loop.train_start - loop.eval_seconds  # training only (s)
    summary.update(status="completed", message=loop.stop_reason or "finished all epochs",
                   images_per_s=round(loop.images_trained / max(seconds, 1e-9), 1))
    if loop.cuda:
        summary["peak_memory_bytes"] = torch.cuda.max_memory_allocated(loop.device)
        summary["predicted_train_memory_bytes"] = loop.predicted


def _record_failure(e: BaseException, spec: NetworkSpec, cfg: TrainConfig, summary: dict) -> None:
    """Put why the run stopped into the summary."""
    if isinstance(e, StopRun):
        summary.update(status=e.status, message=e.message)
    elif isinstance(e, UserError):
        summary.update(status="failed", message=str(e))
    elif isinstance(e, OSError) and e.errno == errno.ENOSPC:
        summary.update(status="failed", message=DISK_FULL)
    elif isinstance(e, torch.OutOfMemoryError):
        need = None
        try:
            need = format_bytes(plan_run(spec, cfg, check_transfer=False).memory_bytes)
        except Exception:  # noqa: BLE001 - the advice is best effort
            pass
        summary.update(status="failed", message=(
            f"out of memory at batch size {cfg.batch_size}" + (f" (predicted {need})" if need else "")
            + f"; try batch size {max(1, cfg.batch_size // 2)}"))
    elif isinstance(e, Exception):
        summary.update(status="failed", message=f"{type(e).__name__}: {e}")
    else:
        summary.update(status="cancelled", message=f"stopped by {type(e).__name__}")


def _finish(spec: NetworkSpec, cfg: TrainConfig, run_dir: Path, metrics: MetricsWriter | None,
            summary: dict, on_event: Callable[[dict], None] | None = None) -> dict:
    """The last event and summary.json. On a full disk: a short failed summary if any byte fits."""
    summary["seconds"] = round(time.time() - summary["started"], 2)
    try:
        if metrics is not None:
            fields = {"best_val_acc": summary["best_val_acc"]} if summary["status"] == "completed" else {}
            record = metrics.write("error" if summary["status"] == "failed" else "done", status=summary["status"],
                                   message=summary.get("message", ""), **fields)
            if on_event:
                on_event(record)
        if not (run_dir / "spec.json").exists():
            write_json_atomic(run_dir / "spec.json", spec.to_dict())
            write_json_atomic(run_dir / "config.json", cfg.to_dict())
        write_json_atomic(run_dir / "summary.json", summary)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        summary.update(status="failed", message=DISK_FULL)
        try:
            write_json_atomic(run_dir / "summary.json", {"status": "failed", "message": DISK_FULL})
        except OSError:
            pass  # not one byte fits: readers call the run interrupted once its heartbeat stops
    finally:
        if metrics is not None:
            metrics.close()
    return summary
