"""Transfer learning: start a run from trained weights, keep (freeze) what is worth keeping, train
the rest, and the course's four-cell guide to choosing how much to freeze.

Owns:
- reading a source of weights: a run folder (its best checkpoint) or a weights file (safetensors,
  or a state dict loaded with torch.load(weights_only=True): explorer.training.checkpoint);
- load_init: fitting the source into a network, entry by entry: same names (a run of the same
  network) or torchvision's order (explorer.core.weights pairs presets that mirror torchvision);
  a different class count gets a new head, a different input channel count gets the first conv's
  filters summed over input channels (RGB -> grey) or averaged and repeated (grey -> RGB), a
  linear layer whose input size changed (another image size) starts afresh; each adaptation is a
  notice. Anything else that does not fit raises RunError naming the layer and both shapes;
- freezing: a prefix of the spec's blocks keeps its weights (requires_grad=False, batch norm in
  eval mode so its running statistics stay); "features" freezes every block before the
  classifier head (a linear probe), "N" blocks 1..N (numbered from 1 as on the Build page);
- param_groups: discriminative learning rates (loaded layers at lr x pretrained_lr_scale);
- the frozen-aware training-memory prediction (explorer.core.analysis, frozen_blocks);
- (limit_per_class, N training images per class, lives with run preparation: prepare.py);
- recommend: the course's table (dataset size x similarity to the pretraining data).
The loop calls prepare() once the model is built and param_groups() for its optimizer.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from explorer.core.analysis import MemoryBreakdown, analyze
from explorer.core.budget import block_cost
from explorer.core.shapes import infer_shapes
from explorer.core.spec import NetworkSpec
from explorer.data.shapes import DEFAULT_COUNT as SHAPES_COUNT
from explorer.errors import ConfigError, RunError
from explorer.training.config import TrainConfig
from explorer.training.lineage import lineage, start_label

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


# --- where the weights come from ------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """Weights to start from, read safely into CPU tensors."""

    path: Path                              # the run folder or the weights file
    kind: str                               # "run" or "file"
    state: dict[str, torch.Tensor]          # name -> tensor (CPU), in the file's order
    spec: NetworkSpec | None                # the source run's network; None for a weights file
    dataset: str | None                     # the source run's dataset; None for a weights file
    best_val_acc: float | None              # the source run's best validation accuracy (fraction)

    @property
    def name(self) -> str:
        return self.path.name


def resolve_source(init_from: str, runs_dir: str | Path | None = None) -> Path:
    """The run folder or weights file `init_from` names (a path, or a run's folder name under the
    runs folder); RunError saying what to give when there is none."""
    from explorer.training.runs import runs_root

    path = Path(init_from).expanduser()
    if not path.exists() and not path.is_absolute() and len(path.parts) == 1:
        path = runs_root(runs_dir) / path            # a run's name, as `python -m explorer runs` lists it
    if path.is_dir():
        if not (path / "spec.json").is_file() or not (path / "checkpoint.safetensors").is_file():
            raise RunError(f"{path} is not a run with a checkpoint (spec.json and checkpoint.safetensors, saved "
                           f"after its first epoch); pick a finished run from `python -m explorer runs`")
        return path
    if path.is_file():
        if path.suffix not in WEIGHT_SUFFIXES:
            raise RunError(f"{path} is not a weights file ({', '.join(WEIGHT_SUFFIXES)}); give a run folder or a "
                           f"state dict saved with safetensors or torch.save(model.state_dict())")
        return path
    raise RunError(f"--init-from {init_from}: there is no run folder or weights file there; list runs with "
                   f"`python -m explorer runs`, or give the path of a .safetensors/.pth file")


def learned_size(init_from: str, runs_dir: str | Path | None = None) -> tuple[int, int] | None:
    """(H, W) of the images the weights `init_from` names were trained on: a run folder's fitted
    input (its spec.json); None for a weights file, which does not say. RunError when there is no
    such run or file (resolve_source)."""
    from explorer.training.runs import read_json

    path = resolve_source(init_from, runs_dir)
    if path.is_file():
        return None
    try:
        shape = NetworkSpec.from_dict(read_json(path / "spec.json")).input
    except Exception as e:  # noqa: BLE001 - a damaged spec is the same user error as in read_source
        raise RunError(f"the run {path.name} cannot be read ({e}); pick another run") from None
    return (shape[1], shape[2]) if len(shape) == 3 else None


def read_source(init_from: str, runs_dir: str | Path | None = None) -> Source:
    """The weights of a run folder (best checkpoint) or a weights file; RunError when unusable."""
    from explorer.training.checkpoint import load_run_spec_config, load_state_dict_file
    from explorer.training.runs import read_json

    path = resolve_source(init_from, runs_dir)
    if path.is_file():
        return Source(path=path, kind="file", state=load_state_dict_file(path), spec=None, dataset=None,
                      best_val_acc=None)
    try:
        spec, cfg = load_run_spec_config(path)
    except Exception as e:  # noqa: BLE001 - a damaged spec/config is the same user error
        raise RunError(f"the run {path.name} cannot be read ({e}); pick another run") from None
    summary = read_json(path / "summary.json")
    best = summary.get("best_val_acc") if isinstance(summary, dict) else None
    return Source(path=path, kind="run", state=load_state_dict_file(path / "checkpoint.safetensors"), spec=spec,
                  dataset=cfg.dataset, best_val_acc=best if isinstance(best, (int, float)) else None)


# --- the network's parts --------------------------------------------------------------------------
def head_block(spec: NetworkSpec) -> int:
    """Index in spec.blocks (from 0) of the classifier head: the last block with parameters."""
    plan = infer_shapes(spec)
    for inst in reversed(plan.instances):
        if block_cost(inst.type, inst.in_shape[0], inst.params)[1] > 0:
            return inst.block_index
    raise ConfigError("the network has no layer with weights to train", field="freeze")


def frozen_blocks(spec: NetworkSpec, freeze: str) -> int:
    """How many leading blocks of spec.blocks keep their weights; ConfigError when nothing would train."""
    if freeze in ("none", "", None):
        return 0
    head = head_block(spec)
    if freeze == "features":
        return head
    n = int(freeze)
    if n > head:
        raise ConfigError(f"--freeze {n} would freeze the classifier head (block {head + 1} of {len(spec.blocks)}): "
                          f"nothing would train; freeze at most up to block {head} or use 'features'",
                          field="freeze")
    return n


def _block_modules(model: nn.Module, n: int) -> list[nn.Module]:
    """The top-level modules of the first n spec blocks of a SpecNetwork."""
    names = {inst.name for inst in model.plan.instances if inst.block_index < n}
    return [m for name, m in model.named_children() if name in names]


def _head_prefix(model: nn.Module) -> str:
    """'linear2.': the state-dict prefix of the classifier head's module."""
    head = head_block(model.spec)
    last = [inst.name for inst in model.plan.instances if inst.block_index == head][-1]
    return last + "."


# --- loading ------------------------------------------------------------------------------------
def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) or "scalar"


def _pair(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor], what: str) -> list[tuple[str, str]]:
    """(our key, their key) for every entry: by name (a run of the same network), else in order
    (a torchvision state dict for a preset that mirrors it); RunError naming what differs."""
    if set(ours) == set(theirs):
        return [(k, k) for k in ours]
    if len(ours) == len(theirs) and all(_leaf(a) == _leaf(b) for a, b in zip(ours, theirs)):
        return list(zip(ours, theirs))
    missing = [k for k in ours if k not in theirs]
    extra = [k for k in theirs if k not in ours]
    lacks = f"; {what} lacks {', '.join(missing[:4])}" + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    has = f"; it has {', '.join(extra[:4])}" + (f" and {len(extra) - 4} more" if len(extra) > 4 else "")
    raise RunError(f"the layers of {what} do not match this network ({len(theirs)} entries against "
                   f"{len(ours)}{lacks if missing else ''}{has if extra else ''}). Start from a run of the same "
                   f"network (same blocks; the class count and input may differ), or train from scratch")


def adapt_channels(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A first conv's weight (K, C, kh, kw) for `channels` input channels: the filters summed over
    C and shared equally, so a grey image x gives the response RGB (x, x, x) gave:
    3 -> 1 sums them (K, 1, kh, kw); 1 -> 3 repeats them divided by 3."""
    total = weight.sum(dim=1, keepdim=True)                 # (K, 1, kh, kw)
    return (total / channels).repeat(1, channels, 1, 1) if channels != 1 else total


def _fit_entry(key: str, mine: torch.Tensor, theirs: torch.Tensor, *, first_conv: str | None, head: str,
               what: str) -> tuple[torch.Tensor | None, str | None]:
    """(tensor to load or None to keep the fresh one, the module to keep fresh or None)."""
    if mine.shape == theirs.shape:
        return theirs, None
    module = key.rsplit(".", 1)[0]
    if key.startswith(head):
        return None, module
    same_filters = mine.dim() == 4 and (mine.shape[0], *mine.shape[2:]) == (theirs.shape[0], *theirs.shape[2:])
    if key == first_conv and same_filters:                   # only the input channels differ
        return adapt_channels(theirs.to(mine.dtype), mine.shape[1]), None
    if mine.dim() == 2 and theirs.dim() == 2 and mine.shape[0] == theirs.shape[0]:
        return None, module                                  # its input size changed with the image size
    raise RunError(f"{what}'s {key} has shape {_shape(theirs)} but this network's needs {_shape(mine)}; the "
                   f"layers do not match there. Start from a run of the same network, or train from scratch")


def load_init(model: nn.Module, source: Source | str) -> list[str]:
    """Copy a source's weights into a SpecNetwork (built from a spec; real or meta tensors),
    adapting what can be adapted; returns notices saying what was adapted. Sets
    model.pretrained_keys (the entries loaded) for param_groups. RunError when it does not fit."""
    source = read_source(source) if isinstance(source, str) else source
    what = f"{'run' if source.kind == 'run' else 'weights file'} {source.name}"
    ours = model.state_dict()                                # shares storage with the model
    head = _head_prefix(model)
    first_conv = next((k for k, t in ours.items() if t.dim() == 4 and _leaf(k) == "weight"), None)
    planned: dict[str, torch.Tensor] = {}
    fresh: list[str] = []
    for key, theirs_key in _pair(ours, source.state, what):
        value, keep_fresh = _fit_entry(key, ours[key], source.state[theirs_key], first_conv=first_conv,
                                       head=head, what=what)
        if keep_fresh is not None and keep_fresh not in fresh:
            fresh.append(keep_fresh)
        if value is not None:
            planned[key] = value
    loaded = {k: v for k, v in planned.items() if k.rsplit(".", 1)[0] not in fresh}
    with torch.no_grad():
        for key, value in loaded.items():
            ours[key].copy_(value)
    model.pretrained_keys = frozenset(loaded)
    return _load_notices(model, source, ours, loaded, fresh, first_conv, head)


def _load_notices(model, source: Source, ours, loaded, fresh, first_conv, head) -> list[str]:
    acc = f", best validation accuracy {source.best_val_acc:.1%}" if source.best_val_acc is not None else ""
    on = f" on {source.dataset}" if source.dataset else ""
    notices = [f"started from {source.kind} {source.name}{on}{acc}: {len(loaded)} of {len(ours)} weight "
               f"entries loaded"]
    theirs_c = _source_channels(source, first_conv)
    mine_c = ours[first_conv].shape[1] if first_conv else None
    if first_conv in loaded and theirs_c is not None and theirs_c != mine_c:
        how = "summed over" if mine_c == 1 else "averaged over"
        notices.append(f"{first_conv}: the filters of the source's {theirs_c} input channels were {how} channels "
                       f"for the {mine_c}-channel images here")
    for module in fresh:
        if head.startswith(module + "."):
            notices.append(f"{module} (the classifier head) starts from random weights: "
                           f"{ours[module + '.weight'].shape[0]} classes here, another count in the source")
        else:
            notices.append(f"{module} starts from random weights: its input size differs from the source's "
                           f"(the images have another size)")
    if source.spec is not None and tuple(source.spec.input[1:]) != tuple(model.spec.input[1:]):
        size = "x".join(map(str, model.spec.input[1:]))
        notices.append(f"the network runs at {size} here, at {'x'.join(map(str, source.spec.input[1:]))} in the "
                       f"source: convolution filters are used as they are")
    return notices


def _source_channels(source: Source, first_conv: str | None) -> int | None:
    """Input channels of the source's first conv weight (found by name, or as its first 4-D weight)."""
    t = source.state.get(first_conv) if first_conv else None
    if t is None:
        t = next((v for k, v in source.state.items() if v.dim() == 4 and _leaf(k) == "weight"), None)
    return int(t.shape[1]) if t is not None else None


# --- freezing and learning rates ------------------------------------------------------------------
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _stats_frozen_train(self: nn.Module, mode: bool = True) -> nn.Module:
    """nn.Module.train for a batch norm whose running statistics are kept: always eval mode."""
    self.training = False
    return self


def keep_statistics(bn: nn.Module) -> None:
    """This batch norm normalises with (and keeps) its running mean and variance, even when the
    model is put in training mode (model.train() reaches it through this override)."""
    bn.train = types.MethodType(_stats_frozen_train, bn)
    bn.train()


def apply_freeze(model: nn.Module, cfg: TrainConfig) -> list[str]:
    """Freeze the first frozen_blocks(spec, cfg.freeze) blocks of a SpecNetwork (no gradients,
    batch norms in eval mode); with cfg.freeze_bn every batch norm keeps its statistics."""
    n = frozen_blocks(model.spec, cfg.freeze)
    notices = []
    for module in _block_modules(model, n):
        module.requires_grad_(False)
        for m in module.modules():
            if isinstance(m, _BATCH_NORMS):
                keep_statistics(m)
    if cfg.freeze_bn:
        for m in model.modules():
            if isinstance(m, _BATCH_NORMS):
                keep_statistics(m)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if n:
        what = "a linear probe: only the classifier head trains" if cfg.freeze == "features" else \
            f"{blocks_text(n)} keep{'s' * (n == 1)} their weights"
        notices.append(f"{what} ({trainable:,} of {total:,} parameters train)")
    if cfg.freeze_bn and any(isinstance(m, _BATCH_NORMS) for m in model.modules()):
        notices.append("batch norm layers keep their running statistics (eval mode) while training")
    return notices


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """The optimizer's parameter groups: trainable parameters only; with loaded weights and
    pretrained_lr_scale < 1, the new layers at lr first, then the loaded ones at lr x scale."""
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    loaded = getattr(model, "pretrained_keys", frozenset())
    new = [p for name, p in trainable if name not in loaded]
    old = [p for name, p in trainable if name in loaded]
    if not old or cfg.pretrained_lr_scale == 1:
        return [{"params": [p for _, p in trainable], "lr": cfg.lr}]
    groups = [{"params": new, "lr": cfg.lr}] if new else []
    return groups + [{"params": old, "lr": cfg.lr * cfg.pretrained_lr_scale}]


def prepare(model: nn.Module, cfg: TrainConfig, summary: dict | None = None) -> list[str]:
    """Everything the loop does for transfer learning once the model is built: load the weights
    (cfg.init_from), freeze (cfg.freeze, cfg.freeze_bn), record the lineage in `summary`.
    Returns the notices for the run's events. RunError/ConfigError when it cannot be done."""
    notices = load_init(model, cfg.init_from) if cfg.init_from else []
    notices += apply_freeze(model, cfg)
    if cfg.train_per_class:
        notices.append(f"at most {cfg.train_per_class} training images per class (train_per_class)")
    if summary is not None:
        summary["start"] = start_label(cfg.freeze, cfg.init_from, cfg.pretrained_lr_scale)
        summary["lineage"] = lineage(cfg)
        summary["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return notices


def check_init(spec: NetworkSpec, cfg: TrainConfig) -> list[str]:
    """What prepare would do for `spec` (already fitted to the dataset), on a meta model: the
    notices, or the RunError/ConfigError a run would stop with. Reads the source file."""
    from explorer.core.build import build

    frozen_blocks(spec, cfg.freeze)
    with torch.device("meta"):
        model = build(spec)
    return prepare(model, cfg)


# --- memory -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrozenCost:
    """Training with frozen blocks against training everything (one batch, bytes)."""

    frozen_blocks: int              # leading spec blocks that keep their weights
    params: int                     # parameter elements
    trainable_params: int           # of which receive gradients
    frozen: MemoryBreakdown         # the training memory with those blocks frozen
    full: MemoryBreakdown           # the same network with every block trainable

    @property
    def saved_bytes(self) -> int:
        """Bytes freezing saves: gradients, optimizer state and activations no longer saved."""
        return self.full.total - self.frozen.total


def frozen_cost(spec: NetworkSpec, cfg: TrainConfig, batch: int | None = None, dtype: str = "float32") -> FrozenCost:
    """The Build/Train pages' figures: trainable parameters and the training-memory prediction with
    cfg.freeze applied, beside the same network trained whole (meta device, nothing allocated)."""
    n = frozen_blocks(spec, cfg.freeze)
    batch = batch or cfg.batch_size
    frozen = analyze(spec, batch=batch, dtype=dtype, optimizer=cfg.memory_optimizer, frozen_blocks=n)
    full = frozen if n == 0 else analyze(spec, batch=batch, dtype=dtype, optimizer=cfg.memory_optimizer)
    return FrozenCost(frozen_blocks=n, params=frozen.totals.params, trainable_params=frozen.totals.trainable_params,
                      frozen=frozen.totals.memory, full=full.totals.memory)


# --- the course's table ---------------------------------------------------------------------------
# cs231n's transfer-learning advice (TEACHING.md, "Looking inside"): dataset size against similarity
# to the data the weights were trained on. The course gives no number for "small"; the line here is
# the pretraining data's own scale: ImageNet-1k has 1,281,167 training images for 1,000 classes,
# about 1,300 per class, so a set with fewer than 1,000 images per class is small next to it.
SMALL_PER_CLASS = 1_000        # training images per class below which a dataset counts as small
# Training images of the built-in sets (explorer.data's descriptions) before the validation split
# of the offline ones (fraction val_fraction held out); the torchvision sets keep their train split.
DATASET_IMAGES = {"mnist5k": 5_000, "digits": 1_797, "shapes": SHAPES_COUNT, "mnist": 60_000, "fashionmnist": 60_000,
                  "cifar10": 50_000, "cifar100": 50_000, "svhn": 73_257}
OFFLINE_SPLIT = ("mnist5k", "digits", "shapes")
# Which sets look alike (for the similarity guess when the source is a run): digits against photos.
DOMAINS = {"mnist5k": "digits", "digits": "digits", "mnist": "digits", "svhn": "digits",
           "fashionmnist": "clothing", "cifar10": "photos", "cifar100": "photos", "folder": "photos",
           "imagenet": "photos", "shapes": "shapes"}


@dataclass(frozen=True)
class Recommendation:
    """One cell of the table and the setting it recommends."""

    small: bool                 # fewer than SMALL_PER_CLASS training images per class
    similar: bool               # the data look like the pretraining data
    setting: str                # "linear probe", "classifier from earlier layers", "fine-tune more layers",
                                # "fine-tune all"
    course: str                 # the course's advice for this cell, in its words
    freeze: str                 # the TrainConfig.freeze that carries it out here
    pretrained_lr_scale: float  # learning-rate scale for the loaded layers
    why: str                    # what the setting does in this network


CELLS = {  # (small, similar) -> (setting, the course's advice)
    (True, True): ("linear probe", "little data, similar domain: a linear classifier on the top features"),
    (True, False): ("classifier from earlier layers",
                    "little data, different domain: linear classifiers on features from earlier layers"),
    (False, True): ("fine-tune more layers", "lots of data, similar domain: fine-tune a few top layers"),
    (False, False): ("fine-tune all", "lots of data, different domain: fine-tune many layers"),
}


def images_per_class(dataset: str, cfg: TrainConfig, num_classes: int) -> int | None:
    """Training images per class the run will see (None when unknown, e.g. an image folder)."""
    total = DATASET_IMAGES.get(dataset)
    if total is None or num_classes < 1:
        return None
    if dataset in OFFLINE_SPLIT:
        total -= int(round(total * cfg.val_fraction))
    per_class = total // num_classes
    return min(per_class, cfg.train_per_class) if cfg.train_per_class else per_class


def guess_similar(source_dataset: str | None, dataset: str) -> bool | None:
    """Same kind of images (digits, clothing, photos, shapes)? None when either is unknown."""
    a, b = DOMAINS.get(source_dataset or ""), DOMAINS.get(dataset)
    return None if a is None or b is None else a == b


def _feature_blocks(spec: NetworkSpec) -> list[int]:
    """Block numbers (from 1) before the head that have weights: the candidates to freeze up to."""
    plan = infer_shapes(spec)
    head = head_block(spec)
    found = sorted({inst.block_index + 1 for inst in plan.instances if inst.block_index < head
                    and block_cost(inst.type, inst.in_shape[0], inst.params)[1] > 0})
    return found


def _freeze_upto(spec: NetworkSpec, share: float) -> str:
    """freeze "N" keeping about `share` of the weighted blocks before the head (at least the first)."""
    blocks = _feature_blocks(spec)
    if not blocks:
        return "features"
    k = min(len(blocks), max(1, math.floor(share * len(blocks))))
    return str(blocks[k - 1])


def blocks_text(n: int) -> str:
    """The first n blocks, as the Build page numbers them: 'block 1', 'blocks 1-4'."""
    return "block 1" if n == 1 else f"blocks 1-{n}"


def recommend(spec: NetworkSpec, per_class: int, similar: bool) -> Recommendation:
    """The course's cell for `per_class` training images per class and the similarity, and the
    freeze setting that carries it out in `spec`."""
    small = per_class < SMALL_PER_CLASS
    setting, course = CELLS[(small, similar)]
    if small and similar:
        freeze, scale, why = "features", 1.0, "every block keeps its weights; only the classifier head trains"
    elif small:
        freeze = _freeze_upto(spec, 1 / 3)
        scale, why = 1.0, (f"{blocks_text(int(freeze))} (the generic early features: edges, blobs) keep their "
                           f"weights; the later, more specific layers and the head train on them")
    elif similar:
        freeze = _freeze_upto(spec, 2 / 3)
        scale, why = 1.0, (f"{blocks_text(int(freeze))} keep their weights; the top layers and the head are "
                           f"fine-tuned")
    else:
        freeze, scale, why = "none", 0.1, ("every layer trains; the loaded ones at a tenth of the learning rate "
                                           "(discriminative rates), so they move from their start gently")
    return Recommendation(small=small, similar=similar, setting=setting, course=course, freeze=freeze,
                          pretrained_lr_scale=scale, why=why)
