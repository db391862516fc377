"""The training loop: small datasets live on the device as tensors, no DataLoader workers.

One call of `train` runs one TrainConfig on one spec and writes a run directory (runs.py).
On CUDA: bf16 autocast, channels_last, cudnn.benchmark. Losses and accuracies stay on the device
between log steps, so the GPU is not synchronised every step.
Sanity checks from practice: the first loss is compared with ln(classes); a loss above 3x its
start, or NaN, stops the run as diverged; out-of-memory stops it as failed with advice.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from explorer.analysis import analyze
from explorer.build import build
from explorer.report import format_bytes
from explorer.spec import NetworkSpec, SpecError
from explorer.training.adapt import adapt_spec
from explorer.training.config import TrainConfig
from explorer.training.runs import MetricsWriter, write_json_atomic

DIVERGENCE_FACTOR = 3.0     # stop when the loss exceeds 3x its first value (cs231n's rule of thumb)
EVAL_BATCH = 1024


class StopRun(Exception):
    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class PreparedData:
    x_train: torch.Tensor   # uint8 (N, C, H, W) on the device
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    mean: torch.Tensor      # (1, C, 1, 1) float32
    std: torch.Tensor


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SpecError("device cuda was asked for but no CUDA GPU is available here; use auto or cpu",
                        field="device")
    return torch.device(name)


def _fit_images(x: torch.Tensor, size: tuple[int, int], how: str) -> torch.Tensor:
    """uint8 (N, C, h, w) -> uint8 (N, C, H, W): zero padding around, or bilinear resizing."""
    if how == "pad":
        dh, dw = size[0] - x.shape[2], size[1] - x.shape[3]
        return F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
    if how == "resize":
        out = F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=True)
        return out.round().clamp(0, 255).to(torch.uint8)
    return x


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _scheduler(opt, cfg: TrainConfig, steps_per_epoch: int):
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total)
    if cfg.schedule == "step":
        period = (cfg.step_epochs or max(1, cfg.epochs // 3)) * steps_per_epoch
        return torch.optim.lr_scheduler.StepLR(opt, step_size=period, gamma=cfg.gamma)
    return None


def predicted_memory(spec: NetworkSpec, cfg: TrainConfig, device: torch.device) -> int:
    """The core's training-memory prediction for this run's batch, precision and optimizer:
    fp32 weights, gradients and optimizer state; activations in bf16 under CUDA autocast."""
    optimizer = cfg.optimizer if cfg.optimizer != "sgd" else ("sgd" if cfg.momentum > 0 else "sgd-plain")
    full = analyze(spec, batch=cfg.batch_size, dtype="float32", optimizer=optimizer).totals.memory
    if device.type != "cuda":
        return full.total
    half = analyze(spec, batch=cfg.batch_size, dtype="bfloat16", optimizer=optimizer).totals.memory
    return (full.parameters + full.buffers + full.gradients + full.optimizer_state
            + half.saved_activations + half.workspace)


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
    save_file(state, str(tmp))
    os.replace(tmp, path)


def train(spec: NetworkSpec, cfg: TrainConfig, run_dir: Path,
          on_event: Callable[[dict], None] | None = None) -> dict:
    """Train `spec` with `cfg`, writing everything into `run_dir`; returns the summary dict.

    Never raises for a run that fails (bad config, diverged, out of memory): the summary says so.
    """
    from explorer.data import load_dataset

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics = MetricsWriter(run_dir)
    started = time.time()
    summary: dict = {"status": "failed", "started": started, "best_val_acc": None, "epochs_done": 0,
                     "dataset": cfg.dataset, "name": spec.name}

    def emit(event: str, **fields) -> None:
        record = metrics.write(event, **fields)
        if on_event:
            on_event(record)

    try:
        cfg.validate()
        device = resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)
        generator = torch.Generator().manual_seed(cfg.seed)
        # overfit mode: a stratified handful of training images, validated on themselves
        dataset = load_dataset(cfg.dataset, data_root=cfg.data_root, val_fraction=cfg.val_fraction,
                               seed=cfg.seed, max_train=cfg.overfit or None)
        info = dataset.info
        adapted = adapt_spec(spec, info.channels, info.height, info.width, info.num_classes)
        spec = adapted.spec
        write_json_atomic(run_dir / "spec.json", spec.to_dict())
        write_json_atomic(run_dir / "config.json", cfg.to_dict())
        x_train, y_train = dataset.x_train, dataset.y_train
        x_val, y_val = dataset.x_val, dataset.y_val
        if cfg.overfit:
            x_val, y_val = x_train, y_train
        data = PreparedData(
            x_train=_fit_images(x_train, adapted.image_size, adapted.resize).to(device),
            y_train=y_train.to(device), x_val=_fit_images(x_val, adapted.image_size, adapted.resize).to(device),
            y_val=y_val.to(device),
            mean=torch.tensor(dataset.mean, device=device).view(1, -1, 1, 1),
            std=torch.tensor(dataset.std, device=device).view(1, -1, 1, 1))

        cuda = device.type == "cuda"
        if cuda:
            torch.backends.cudnn.benchmark = True
            torch.cuda.reset_peak_memory_stats(device)
        model = build(spec).to(device)
        if cuda:
            model = model.to(memory_format=torch.channels_last)
        analysis = analyze(spec)
        summary.update(params=analysis.totals.params, macs=analysis.totals.macs)
        optimizer = _optimizer(model, cfg)
        n = len(data.x_train)
        steps_per_epoch = max(1, math.ceil(n / cfg.batch_size))
        scheduler = _scheduler(optimizer, cfg, steps_per_epoch)
        total_steps = cfg.epochs * steps_per_epoch
        autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else \
            (lambda: torch.autocast("cpu", enabled=False))
        from explorer.data.augment import Augment

        augment = Augment(crop_padding=cfg.crop_padding, flip=cfg.flip)
        expected = math.log(info.num_classes)
        predicted = predicted_memory(spec, cfg, device)
        emit("start", device=str(device), dataset=info.name, train_size=n, val_size=len(data.x_val),
             params=analysis.totals.params, macs=analysis.totals.macs, steps_per_epoch=steps_per_epoch,
             total_steps=total_steps, expected_initial_loss=round(expected, 4), notices=list(adapted.notices),
             predicted_train_memory_bytes=predicted)
        for notice in adapted.notices:
            emit("warning", message=notice)

        step = 0
        first_loss = None
        best = -1.0
        cancel_file = run_dir / "CANCEL"
        run_loss = torch.zeros((), device=device)
        run_correct = torch.zeros((), device=device, dtype=torch.long)
        run_seen = 0
        window_start, window_images = time.perf_counter(), 0
        train_start = time.perf_counter()
        stop_reason = None
        eval_seconds = 0.0
        images_trained = 0
        model.train()
        for epoch in range(1, cfg.epochs + 1):
            order = torch.randperm(n, generator=generator).to(device)
            epoch_loss = torch.zeros((), device=device)
            epoch_correct = torch.zeros((), device=device, dtype=torch.long)
            for start in range(0, n, cfg.batch_size):
                if cancel_file.exists():
                    raise StopRun("cancelled", "cancelled by the user")
                idx = order[start:start + cfg.batch_size]
                xb = augment(data.x_train[idx], generator=generator)  # uint8: crops pad with black
                xb = (xb.float() / 255 - data.mean) / data.std  # (B, C, H, W) float32
                if cuda:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                yb = data.y_train[idx]
                with autocast():
                    logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                step += 1
                with torch.no_grad():
                    correct = (logits.argmax(1) == yb).sum()
                    run_loss += loss.detach() * len(idx)
                    run_correct += correct
                    epoch_loss += loss.detach() * len(idx)
                    epoch_correct += correct
                run_seen += len(idx)
                window_images += len(idx)
                images_trained += len(idx)
                if step == 1 or step % cfg.log_every == 0 or step == total_steps:
                    value = run_loss.item() / run_seen
                    if first_loss is None:
                        first_loss = loss.item()
                        if not math.isfinite(first_loss):
                            raise StopRun("diverged", "the first loss is not a number: check the learning rate "
                                                      "and the network's last layer")
                        if abs(first_loss - expected) > max(0.5, 0.5 * expected):
                            emit("warning", step=step, message=(
                                f"the first loss is {first_loss:.3f} but ln({info.num_classes}) = {expected:.3f} is "
                                f"expected from an untrained network (uniform guesses); check the initialisation "
                                f"or the last layer"))
                    if not math.isfinite(value) or value > DIVERGENCE_FACTOR * first_loss:
                        raise StopRun("diverged", f"the loss reached {value:.3g}, more than {DIVERGENCE_FACTOR:g}x "
                                                  f"its start ({first_loss:.3g}): lower the learning rate "
                                                  f"(now {cfg.lr:g})")
                    now = time.perf_counter()
                    rate = window_images / max(now - window_start, 1e-9)
                    elapsed = now - train_start
                    eta = elapsed / step * (total_steps - step)
                    emit("step", step=step, epoch=epoch, loss=round(value, 5),
                         acc=round(run_correct.item() / run_seen, 5), lr=optimizer.param_groups[0]["lr"],
                         images_per_s=round(rate, 1), eta_s=round(eta, 1), elapsed_s=round(elapsed, 2),
                         progress=round(step / total_steps, 4))
                    run_loss.zero_(), run_correct.zero_()
                    run_seen = 0
                    window_start, window_images = now, 0
                if cfg.max_seconds is not None and time.time() - started > cfg.max_seconds:
                    stop_reason = f"stopped after the time limit of {cfg.max_seconds:g} s"
                    break
            eval_start = time.perf_counter()
            result = _evaluate(model, data, data.x_val, data.y_val, device, autocast, cuda, cfg.label_smoothing)
            seen = images_trained - (epoch - 1) * n
            train_loss = epoch_loss.item() / max(1, seen)
            emit("epoch", epoch=epoch, step=step, train_loss=round(train_loss, 5),
                 train_acc=round(epoch_correct.item() / max(1, seen), 5), val_loss=round(result["val_loss"], 5),
                 val_acc=round(result["val_acc"], 5), val_top5=round(result["val_top5"], 5))
            summary["epochs_done"] = epoch
            summary["final_val_acc"] = result["val_acc"]
            if result["val_acc"] > best:
                best = result["val_acc"]
                summary["best_val_acc"] = best
                summary["best_epoch"] = epoch
                _save_checkpoint(model, run_dir / "checkpoint.safetensors")
            # evaluation and checkpointing are not training: keep them out of images/s
            paused = time.perf_counter() - eval_start
            eval_seconds += paused
            window_start += paused
            if stop_reason:
                break
        seconds = time.perf_counter() - train_start - eval_seconds
        summary.update(status="completed", message=stop_reason or "finished all epochs",
                       images_per_s=round(images_trained / max(seconds, 1e-9), 1))
        if cuda:
            summary["peak_memory_bytes"] = torch.cuda.max_memory_allocated(device)
            summary["predicted_train_memory_bytes"] = predicted
    except StopRun as stop:
        summary.update(status=stop.status, message=stop.message)
    except SpecError as e:
        summary.update(status="failed", message=str(e))
    except torch.OutOfMemoryError:
        need = None
        try:
            need = format_bytes(predicted_memory(spec, cfg, resolve_device(cfg.device)))
        except Exception:  # noqa: BLE001 - the advice is best effort
            pass
        summary.update(status="failed", message=(
            f"out of memory at batch size {cfg.batch_size}" + (f" (predicted {need})" if need else "")
            + f"; try batch size {max(1, cfg.batch_size // 2)}"))
    except Exception as e:  # noqa: BLE001 - a run records its failure instead of crashing the caller
        summary.update(status="failed", message=f"{type(e).__name__}: {e}")
    summary["seconds"] = round(time.time() - started, 2)
    if summary["status"] == "completed":
        emit("done", status="completed", message=summary["message"], best_val_acc=summary["best_val_acc"])
    else:
        emit("error" if summary["status"] == "failed" else "done", status=summary["status"],
             message=summary.get("message", ""))
    metrics.close()
    if not (run_dir / "spec.json").exists():
        write_json_atomic(run_dir / "spec.json", spec.to_dict())
        write_json_atomic(run_dir / "config.json", cfg.to_dict())
    write_json_atomic(run_dir / "summary.json", summary)
    return summary
