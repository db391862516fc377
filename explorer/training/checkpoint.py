"""Reload what a run produced: its network with the best weights, and its validation images
prepared exactly as the loop saw them (same split, same padding/resizing, same normalisation).

Owns: reading weights files. A weights file is never unpickled freely: safetensors files hold
no code, and .pt/.pth/.bin state dicts load with torch.load(weights_only=True), which builds
only tensors and containers and refuses any other global (a __reduce__ payload). Whatever is
wrong with a file (damaged, truncated, not a state dict, a payload, wrong shapes) raises
RunError with the path and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from explorer.core.build import build
from explorer.errors import RunError
from explorer.core.spec import NetworkSpec
from explorer.training.config import TrainConfig
from explorer.training.runs import read_json


@dataclass(frozen=True)
class RunData:
    """Validation split of a run. Images uint8 (N, C, H, W) at the network's input size."""

    x_val: torch.Tensor
    y_val: torch.Tensor
    masks_val: torch.Tensor | None    # bool (N, H, W) at the network's input size (shapes only)
    mean: torch.Tensor                # (1, C, 1, 1)
    std: torch.Tensor
    class_names: tuple[str, ...]

    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        return (x_uint8.float() / 255 - self.mean.to(x_uint8.device)) / self.std.to(x_uint8.device)


def load_run_spec_config(run_dir: Path) -> tuple[NetworkSpec, TrainConfig]:
    run_dir = Path(run_dir)
    spec_data, config_data = read_json(run_dir / "spec.json"), read_json(run_dir / "config.json")
    if spec_data is None or config_data is None:
        raise RunError(f"{run_dir} is not a run directory (spec.json and config.json are missing)")
    return NetworkSpec.from_dict(spec_data), TrainConfig.from_dict(config_data)


MAX_WEIGHTS_BYTES = 4 * 2**30    # 4 GiB: above the largest torchvision classifier (ViT-H/14, 2.5 GB)


def _load_failure(e: Exception) -> str:
    """Why a weights file was refused, in one line. torch's weights_only refusal wraps its reason
    ("Unsupported operand 149") in advice to load with weights_only=False, which would run the
    file's code: a visitor is never told that, only the reason."""
    text = " ".join(str(e).split())
    marker = "WeightsUnpickler error:"
    if marker in text:
        reason = text.split(marker, 1)[1].split(" Check the documentation", 1)[0].strip()
        return f"it holds more than tensors and plain containers: {reason[:200]}"
    return f"{type(e).__name__}: {text[:300]}"


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """{name: tensor} on the CPU from a .safetensors file, or from a torch.save'd state dict
    (any other suffix) loaded with weights_only=True; RunError for anything else."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise RunError(f"The weights file {path} cannot be read ({e.strerror or e}).") from None
    if size > MAX_WEIGHTS_BYTES:
        raise RunError(f"The weights file {path} is {size:,} bytes, more than the {MAX_WEIGHTS_BYTES:,} "
                       f"accepted.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file (or refused payload) is the same user error
        raise RunError(f"The weights file {path} cannot be loaded safely ({_load_failure(e)}). Use a "
                       f"state dict saved with safetensors or torch.save(model.state_dict()).") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]                   # a training checkpoint that wraps the state dict
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise RunError(f"The weights file {path} holds a {type(state).__name__}, not a state dict of named "
                       f"tensors. Save one with torch.save(model.state_dict()) or safetensors.")
    return state


def load_run_model(run_dir: Path, device: str | torch.device = "cpu") -> tuple[NetworkSpec, nn.Module]:
    """The trained network (best validation epoch) in eval mode; RunError for a missing,
    damaged or mismatched checkpoint."""
    run_dir = Path(run_dir)
    spec, _ = load_run_spec_config(run_dir)
    path = run_dir / "checkpoint.safetensors"
    if not path.exists():
        raise RunError(f"{run_dir.name} has no checkpoint yet (it saves one after its first epoch)")
    model = build(spec)
    state = load_state_dict_file(path)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:     # missing/unexpected keys, shape mismatches
        text = " ".join(str(e).split())[:300]
        raise RunError(f"The checkpoint {path} does not fit the run's network ({text}). The run folder was "
                       f"changed after training; train it again.") from None
    return spec, model.to(device).eval()


def load_run_data(run_dir: Path) -> RunData:
    """The run's validation images, fitted to its network input as during training."""
    from explorer.training.adapt import adapt_spec
    from explorer.training.prepare import channel_tensors, load_run_dataset, validation_images

    spec, cfg = load_run_spec_config(run_dir)
    dataset = load_run_dataset(cfg, download=False)
    info = dataset.info
    # the run's spec.json is the fitted spec: its input is the size the run trained at
    adapted = adapt_spec(spec, info.channels, info.height, info.width, info.num_classes, size=tuple(spec.input[1:]))
    x_val, y_val, masks = validation_images(dataset, adapted, cfg.overfit)
    mean, std = channel_tensors(dataset)
    return RunData(x_val=x_val, y_val=y_val, masks_val=masks, mean=mean, std=std,
                   class_names=tuple(info.class_names))
