"""plan_run: the decision made before a run starts. The Train page shows it; the loop carries it out.

Owns: the device a run trains on (resolve_device), the precision its activations take (bf16
autocast on CUDA, float32 on the CPU), the memory format (channels_last), the CPU threads, the network
fitted to the dataset (explorer.training.adapt), the predicted training memory for that device
and precision at the run's batch size (from explorer.core.analysis), the warnings worth reading
before a launch and the one blocking problem, if any. Because the page and the loop both ask
here, the page's "predicted training memory" is the number the run records in its start event.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from explorer.core.analysis import MemoryBreakdown, analyze
from explorer.core.spec import NetworkSpec
from explorer.errors import ConfigError, DataError, RunError, SpecError, UserError
from explorer.training.adapt import Adapted, adapt_for_run
from explorer.training.config import TrainConfig
from explorer.training.transfer import check_init, frozen_blocks
from explorer.units import format_bytes

SLOW_ON_CPU_MACS = 50e6     # MACs per image above which a CPU run gets a warning
# MACs per image below which a CPU run whose OpenMP threads wait passively (every run the job
# queue, a sweep or Ray starts: OMP_WAIT_POLICY=PASSIVE) uses one intra-op thread: a sleeping
# thread's wake-up costs more than its share of a small network's op. bench/cpu_threads.py on 2
# cores (passive, channels_last, images/s, 1 thread against 2): lenet5 (0.42M MACs) 6,856 vs 6,551,
# twoconv (1.0M) 5,701 vs 4,680, mobilenet_v2 (5.6M, depthwise) 642 vs 491; gapnet (14.7M) 686 vs
# 893, cifar_compact (21.9M) 625 vs 1,036, resnet_cifar (31M) 378 vs 624. One thread also leaves the
# other core to the app and other runs (two lenet5 runs at once: ~7,000 images/s each on one thread,
# ~2,500 on two). A command run from a shell keeps OpenMP's default brief spinning and every core:
# alone, lenet5 then trains at ~13,000 images/s on two threads (explorer/__main__.py).
CPU_THREAD_MIN_MACS = 8e6
DIGIT_SETS = ("mnist5k", "digits", "mnist", "svhn")   # horizontal flips turn these into other shapes
CUDA_DTYPE = "bfloat16"     # activations under CUDA autocast (weights, gradients, optimizer state stay fp32)
CPU_DTYPE = "float32"
DTYPE_WORDS = {"bfloat16": "bf16 activations (autocast)", "float32": "float32"}
BLOCKED = ("settings", "dataset", "network", "transfer", "analysis")  # what a blocking problem asks to change


@dataclass(frozen=True)
class RunPlan:
    """What launching a spec with a TrainConfig does, or why it cannot start."""

    config: TrainConfig                       # the settings planned for (validated when error is None)
    dataset: object | None                    # explorer.data.DatasetInfo the plan was made for
    adapted: Adapted | None                   # the spec fitted to the dataset, and how images are sized
    device: str                               # "cpu" or "cuda": where the run trains
    dtype: str                                # activations' precision: "bfloat16" (CUDA autocast) or "float32"
    channels_last: bool                       # images and weights in channels_last memory format: on CUDA
    #                                           (tensor cores) and on the CPU (oneDNN's convolutions: 1.2-2.1x
    #                                           the images/s of contiguous memory in bench/cpu_threads.py,
    #                                           except resnet18 at 0.91)
    cpu_threads: int | None                   # intra-op threads of a CPU run: 1 below CPU_THREAD_MIN_MACS
    #                                           when waits are passive; None: torch's default (one per
    #                                           core), and on CUDA
    batch_size: int                           # images per optimizer step
    params: int | None                        # parameters of the fitted network (elements)
    macs: int | None                          # multiply-accumulates per image
    memory: MemoryBreakdown | None            # predicted training memory at batch_size, device and dtype (bytes)
    notices: tuple[str, ...] = ()             # how the network was fitted to the data
    warnings: tuple[str, ...] = ()            # worth reading before a launch; nothing blocks
    error: UserError | None = None            # the blocking problem: raise it (loop) or show it (page)
    blocked_at: str | None = None             # one of BLOCKED when error is set: what to change

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def spec(self) -> NetworkSpec | None:
        """The network as it will be trained (fitted to the dataset)."""
        return self.adapted.spec if self.adapted else None

    @property
    def execution(self) -> str:
        """How the run computes, in words for the Train page: "float32, channels_last, one thread"."""
        words = [DTYPE_WORDS.get(self.dtype, self.dtype)] + ["channels_last"] * self.channels_last
        if self.device == "cpu":
            words.append("one thread" if self.cpu_threads == 1 else "every core")
        return ", ".join(words)

    @property
    def memory_bytes(self) -> int | None:
        return None if self.memory is None else self.memory.total

    def raise_if_blocked(self) -> "RunPlan":
        if self.error is not None:
            raise self.error
        return self


def passive_waits() -> bool:
    """True when this process's OpenMP threads sleep as soon as they wait (OMP_WAIT_POLICY=PASSIVE in
    its environment: set by the job queue, sweeps and Ray for every run they start)."""
    return os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"


def resolve_device(name: str) -> torch.device:
    """auto: CUDA when there is a GPU, else the CPU; ConfigError when cuda is asked for but absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda was asked for but no CUDA GPU is available here; use auto or cpu",
                          field="device")
    return torch.device(name)


def device_memory_bytes(device: str) -> int | None:
    """Physical memory of the device a run trains on (bytes): this machine's RAM on the CPU, GPU 0's
    own memory on CUDA; None when it cannot be read."""
    try:
        if device == "cuda":
            import torch

            return int(torch.cuda.get_device_properties(0).total_memory)
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError, RuntimeError, AssertionError):
        return None


def check_memory_fits(memory: int, config: TrainConfig, device: str, size: tuple[int, int]) -> None:
    """ConfigError when a run's predicted training memory (bytes) is over the budget's share of its
    device's memory (CNN_EXPLORER_MAX_TRAIN_MEMORY_PERCENT, default 80): on a shared server one
    visitor's run must not make the machine swap or kill the others' (the CLI is held to it too)."""
    from explorer.core.budget import Budget, current

    total = device_memory_bytes(device)
    percent = current().max_train_memory_percent
    if total is None or memory <= total * percent / 100:
        return
    where = "GPU" if device == "cuda" else "machine"
    raise ConfigError(
        f"this run needs about {format_bytes(memory)} (predicted training memory at batch {config.batch_size}, "
        f"{size[0]}x{size[1]} images) but a run may take {format_bytes(total * percent / 100)}, {percent}% of "
        f"this {where}'s {format_bytes(total)}; lower the batch size or the image size, or pick a smaller "
        f"network (the server's owner sets the share: {Budget.env_name('max_train_memory_percent')})",
        field="batch_size")


def predicted_memory(spec: NetworkSpec, cfg: TrainConfig, device: str) -> tuple[MemoryBreakdown, int, int]:
    """(training memory at cfg.batch_size, params, MACs per image) of an adapted spec on `device`:
    fp32 weights, gradients and optimizer state (trainable parameters only: cfg.freeze); activations
    in bf16 under CUDA autocast."""
    frozen = frozen_blocks(spec, cfg.freeze)  # transfer learning: no gradients or state for these
    full = analyze(spec, batch=cfg.batch_size, dtype=CPU_DTYPE, optimizer=cfg.memory_optimizer,
                   frozen_blocks=frozen).totals
    memory = full.memory
    if device == "cuda":
        half = analyze(spec, batch=cfg.batch_size, dtype=CUDA_DTYPE, optimizer=cfg.memory_optimizer,
                       frozen_blocks=frozen).totals.memory
        memory = MemoryBreakdown(parameters=memory.parameters, buffers=memory.buffers, gradients=memory.gradients,
                                 optimizer_state=memory.optimizer_state, saved_activations=half.saved_activations,
                                 workspace=half.workspace)
    return memory, full.params, full.macs


def _warnings(cfg: TrainConfig, info, device: str, macs: int) -> tuple[str, ...]:
    warnings = []
    if device == "cpu" and macs > SLOW_ON_CPU_MACS:
        warnings.append(f"This network needs {macs / 1e6:,.2f} MMACs per image; on the CPU an epoch can take "
                        f"many minutes. Set a time limit, pick a smaller network, or use a GPU.")
    if not info.offline and info.name != "folder":
        from explorer.data import default_data_root

        where = cfg.data_root or default_data_root()
        warnings.append(f"{info.title} is read from {where}; when it is not there yet it is downloaded on "
                        f"first use, which needs an internet connection.")
    if cfg.flip and info.name in DIGIT_SETS:
        warnings.append("Horizontal flips turn digits into other shapes (a flipped 2 is no longer a 2); "
                        "switch them off for digits.")
    return tuple(warnings)


def _fit_stage(error: UserError) -> str:
    """What to change when the network cannot be fitted to the dataset: an image size it does not
    work at is a training setting (ConfigError), missing starting weights a transfer setting
    (RunError), anything else the network."""
    if isinstance(error, ConfigError):
        return "settings"
    return "transfer" if isinstance(error, RunError) else "network"


def plan_run(spec: NetworkSpec, config: TrainConfig, dataset=None, device: str | None = None,
             check_transfer: bool = True) -> RunPlan:
    """The plan for training `spec` with `config`. Never raises for bad input: a blocking problem
    is the plan's `error` (with `blocked_at`). dataset: the loaded dataset's DatasetInfo (the loop
    passes it; an image folder knows its classes only then), else explorer.data.dataset_info.
    check_transfer: read the weights to start from (config.init_from) and check they fit; the
    loop and the queue's resource request skip it (the loop loads them right after, with the
    same errors; the memory prediction does not depend on them).
    device: "cpu"/"cuda" already chosen (a cluster's GPU), else resolve_device(config.device)."""
    plan = RunPlan(config=config, dataset=dataset, adapted=None, device=device or "cpu", dtype=CPU_DTYPE,
                   channels_last=True, cpu_threads=None, batch_size=config.batch_size, params=None, macs=None,
                   memory=None)

    def blocked(stage: str, error: UserError) -> RunPlan:
        return RunPlan(**{**plan.__dict__, "dataset": dataset, "error": error, "blocked_at": stage})

    try:
        config.validate()
        if dataset is None:
            from explorer.data import dataset_info

            dataset = dataset_info(config.dataset)
        device = device or resolve_device(config.device).type
    except UserError as e:
        return blocked("settings", e)
    cuda = device == "cuda"
    plan = RunPlan(**{**plan.__dict__, "dataset": dataset, "device": device,
                      "dtype": CUDA_DTYPE if cuda else CPU_DTYPE})
    classes = dataset.num_classes
    if not classes:  # an image folder not read yet: the run fits the head once it knows the classes
        if not config.data_root:
            return blocked("dataset", DataError("the image-folder dataset needs a data folder (one sub-folder "
                                                "of images per class): set the data root"))
        classes = spec.num_classes
    try:
        adapted = adapt_for_run(spec, config, dataset.channels, dataset.height, dataset.width, classes)
    except UserError as e:
        return blocked(_fit_stage(e), e)
    plan = RunPlan(**{**plan.__dict__, "adapted": adapted, "notices": adapted.notices})
    if check_transfer and (config.init_from or config.freeze != "none"):
        try:  # the weights fit the fitted network, and something is left to train (meta device)
            plan = RunPlan(**{**plan.__dict__, "notices": adapted.notices + tuple(check_init(adapted.spec, config))})
        except UserError as e:
            return blocked("transfer", e)
    try:
        memory, params, macs = predicted_memory(adapted.spec, config, device)
    except UserError as e:
        return blocked("analysis", e)
    except Exception as e:  # noqa: BLE001 - a bug in a formula: one sentence, never a traceback
        return blocked("analysis", SpecError(f"the analysis failed ({type(e).__name__}: {e})"))
    try:
        check_memory_fits(memory.total, config, device, adapted.image_size)
    except ConfigError as e:
        return blocked("settings", e)
    threads = 1 if not cuda and macs < CPU_THREAD_MIN_MACS and passive_waits() else None
    return RunPlan(**{**plan.__dict__, "params": params, "macs": macs, "memory": memory, "cpu_threads": threads,
                      "warnings": _warnings(config, dataset, device, macs)})


__all__ = ["RunPlan", "plan_run", "resolve_device", "predicted_memory", "SLOW_ON_CPU_MACS", "CPU_THREAD_MIN_MACS",
           "CUDA_DTYPE",
           "CPU_DTYPE", "BLOCKED"]
