"""The command line: `python -m explorer COMMAND ...` (stable; scripts and benchmarks rely on it).

Errors go to stderr with exit status 2 for bad input (any explorer.errors.UserError: unknown
preset, bad spec, shapes that do not fit, bad data or config) and 1 for other failures; a traceback only with --debug.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from explorer.errors import ConfigError, DataError, RunError, UserError
from explorer.core.spec import MAX_SPEC_BYTES, NetworkSpec, SpecError

if TYPE_CHECKING:  # imported where used: `analyze` and `presets` start without the training code
    from explorer.training.config import TrainConfig

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1


def _source_group(parser: argparse.ArgumentParser, torchvision: bool) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--preset", metavar="NAME", help="a named preset (see `presets`)")
    group.add_argument("--spec", metavar="FILE", help="a spec JSON file (format cnn-explorer/spec@1)")
    if torchvision:
        group.add_argument("--torchvision", metavar="NAME",
                           help="a torchvision classification model, e.g. vgg16, resnet50 (no weights needed)")


def _shape(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 3,224,224, got {text!r}") from None
    if len(values) not in (1, 3) or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected C,H,W (or F) with positive sizes, got {text!r}")
    return values


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explorer",
                                     description="CNN Architecture Explorer: analyse, train and export networks.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("presets", help="list the preset networks")
    p.add_argument("--format", choices=("table", "json"), default="table")

    _analyze_parser(sub)
    _train_parser(sub)
    p = sub.add_parser("runs", help="list training runs")
    p.add_argument("--runs-dir", metavar="DIR", help="default ./runs")
    p.add_argument("--format", choices=("table", "json"), default="table")

    p = sub.add_parser("export", help="write the network as PyTorch source, spec JSON or ONNX")
    _source_group(p, torchvision=False)
    p.add_argument("--to", choices=("pytorch", "json", "onnx"), required=True)
    p.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout; required for onnx)")

    _gradcam_parser(sub)
    from explorer.search.cli import add_parsers as add_sweep_parsers

    add_sweep_parsers(sub, _positive)  # sweep, sweeps
    return parser




def _analyze_parser(sub) -> None:
    from explorer.core.analysis import DTYPES, OPTIMIZER_STATE

    p = sub.add_parser("analyze", help="per-layer shapes, params, MACs, memory and receptive field",
                       description="Analyse a network on the meta device (no weights are allocated). "
                                   "MACs are multiply-accumulates of conv/linear layers per image, bias "
                                   "excluded (FLOPs = 2 x MACs); params include biases; memory in bytes.")
    _source_group(p, torchvision=True)
    p.add_argument("--input", type=_shape, metavar="C,H,W",
                   help="input shape per image (default: the spec's, or 3,224,224 for torchvision "
                        "models, 3,299,299 for inception_v3)")
    p.add_argument("--batch", type=_positive, default=1, metavar="N",
                   help="batch size for activation and training memory (default 1)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="float32", help="element type (default float32)")
    p.add_argument("--optimizer", choices=tuple(OPTIMIZER_STATE), default="sgd",
                   help="optimizer for the training-memory estimate: sgd (with momentum: 1 buffer), "
                        "sgd-plain (none), adam/adamw (2 buffers); default sgd")
    p.add_argument("--num-classes", type=_positive, metavar="N",
                   help="change the class count (the last layer follows)")
    p.add_argument("--format", choices=("table", "json", "csv", "memtable"), default="table",
                   help="table (torchinfo-like), json, csv, or memtable (the cs231n VGG-16 layout)")


def _train_parser(sub) -> None:
    from explorer.training.config import DEVICES, OPTIMIZERS, SCHEDULES
    from explorer.training.initialise import INIT_NAMES

    p = sub.add_parser("train", help="train a network on a dataset and write a run directory",
                       description="Train in this process and write RUN/{spec,config,summary}.json, "
                                   "metrics.jsonl and checkpoint.safetensors. Exit status 0 when the run "
                                   "completed, 1 when it diverged, failed or was cancelled, 2 for bad input.")
    _source_group(p, torchvision=False)
    p.add_argument("--dataset", metavar="NAME", help="mnist5k, digits, shapes (offline), mnist, fashionmnist, "
                                                     "cifar10, cifar100, svhn, folder (required unless --config)")
    p.add_argument("--data-root", metavar="DIR", help="where torchvision sets / the image folder live (any folder "
                   "here; the web app checks CNN_EXPLORER_DATA_ROOTS before it queues a run)")
    p.add_argument("--config", metavar="FILE", help="a TrainConfig JSON (flags given here override it)")
    p.add_argument("--epochs", type=_positive, metavar="N")
    p.add_argument("--batch-size", type=_positive, metavar="N")
    p.add_argument("--lr", type=float, metavar="X", help="peak learning rate")
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--momentum", type=float, metavar="X", help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=float, metavar="X")
    p.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule (default cosine)")
    p.add_argument("--label-smoothing", type=float, metavar="X")
    p.add_argument("--crop-padding", type=int, metavar="P", help="random crop after padding P pixels")
    p.add_argument("--flip", action="store_true", default=None, help="random horizontal flips")
    p.add_argument("--init", choices=INIT_NAMES,
                   help="weight initialisation: default (PyTorch's), he (Kaiming normal) or xavier (Glorot "
                        "uniform); loaded weights (--init-from) replace it where they fit")
    p.add_argument("--image-size", type=int, metavar="PX",
                   help="train at PX x PX images (default 0: automatic, the dataset's size or else the smallest "
                        "the network works at; with --init-from the size the weights were trained at)")
    p.add_argument("--overfit", type=int, metavar="N", help="train and validate on N images only (sanity check)")
    p.add_argument("--device", choices=DEVICES)
    p.add_argument("--seed", type=int, metavar="N")
    p.add_argument("--max-seconds", type=float, metavar="S", help="stop after S seconds of wall time")
    p.add_argument("--runs-dir", metavar="DIR", help="parent of the new run directory (default ./runs)")
    p.add_argument("--run-dir", metavar="DIR", help="write into this directory instead of a new one")
    _transfer_flags(p)  # [transfer]
    p.add_argument("--queue", metavar="DB", help=argparse.SUPPRESS)  # set by the job queue
    p.add_argument("--executor", choices=("local", "ray"),
                   help="where the run executes: local (this process; the default) or ray (a Ray cluster: "
                        "the run folder must be on storage the cluster shares); default $CNN_EXPLORER_EXECUTOR")
    p.add_argument("--ray-address", metavar="A", help="the Ray cluster to join, e.g. 10.0.0.5:6379 (default "
                                                      "$CNN_EXPLORER_RAY_ADDRESS; empty: a local Ray instance)")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text: progress lines; json: the summary object at the end")


def _transfer_flags(p) -> None:
    """[transfer] Start from trained weights (explorer/training/transfer.py)."""
    g = p.add_argument_group("transfer learning", "start from trained weights and choose what keeps them")
    g.add_argument("--init-from", metavar="RUN_DIR|WEIGHTS_FILE",
                   help="start from a run's best checkpoint (a run folder, or its name under --runs-dir) or a "
                        "weights file (.safetensors, or .pt/.pth loaded with weights_only=True; torchvision's "
                        "files fit the presets that mirror them); a new class count gets a new head, another "
                        "channel count an adapted first conv (each adaptation is printed)")
    g.add_argument("--freeze", metavar="none|features|UPTO_BLOCK",
                   help="none (default): everything trains; features: only the classifier head trains (a "
                        "linear probe); a block number N (from 1, as on the Build page): blocks 1..N keep "
                        "their weights and batch-norm statistics")
    g.add_argument("--pretrained-lr-scale", type=float, metavar="X",
                   help="learning rate of the loaded layers = lr x X, in (0, 1] (default 1; e.g. 0.1 for "
                        "fine-tuning with discriminative rates)")
    g.add_argument("--freeze-bn", action="store_true", default=None,
                   help="every batch norm keeps its running statistics (eval mode) while training")
    g.add_argument("--train-per-class", type=int, metavar="N",
                   help="keep N training images per class (stratified, seeded by --seed); validation unchanged")


def _gradcam_parser(sub) -> None:
    p = sub.add_parser("gradcam", help="write a Grad-CAM overlay for one image of a run as a PNG",
                       description="Grad-CAM (captum LayerGradCam) of a trained run's best checkpoint for one "
                                   "validation image or an image file: the map is upsampled to the image, divided "
                                   "by its maximum and blended over it; the PNG shows [image | overlay | colour "
                                   "bar]. The default layer is the last conv layer's rectified output.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (see `runs`)")
    p.add_argument("--layer", metavar="NAME", help="module name, e.g. conv3, relu4, residual2.conv1 "
                                                    "(default: the last conv layer's activation)")
    image = p.add_mutually_exclusive_group()
    image.add_argument("--index", type=int, metavar="I", help="validation image number (default 0)")
    image.add_argument("--image", metavar="FILE", help="an image file (PNG, JPEG, GIF, BMP, WebP), scaled and "
                                                       "centre-cropped to the network's input")
    p.add_argument("--class", dest="target", metavar="C", help="class index or name (default: the predicted one)")
    p.add_argument("-o", "--output", metavar="OUT.png", required=True, help="the PNG to write")


def load_spec(preset: str | None, spec_path: str | None) -> NetworkSpec:
    if preset is not None:
        from explorer.core.presets import load_preset

        return load_preset(preset)
    path = Path(spec_path)
    if not path.is_file():
        raise ConfigError(f"no spec file at {spec_path}; pass a JSON file written by `export --to json` "
                          f"or the app's download button", field="spec")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SPEC_BYTES + 1)  # bounded, whatever the file's size
    except OSError as e:
        raise ConfigError(f"cannot read the spec file {spec_path}: {e.strerror or e}", field="spec") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"{spec_path} is larger than {MAX_SPEC_BYTES:,} bytes, the limit for a spec")
    return NetworkSpec.from_json(data)


def _cmd_presets(args) -> int:
    from explorer.core.presets import list_presets

    presets = list_presets()
    if args.format == "json":
        print(json.dumps([{"name": p.name, "title": p.title, "year": p.year, "mirrors": p.mirrors,
                           "input": list(p.input), "num_classes": p.num_classes, "tags": list(p.tags),
                           "description": p.description} for p in presets], indent=2))
        return 0
    width = max(len(p.name) for p in presets)
    for p in presets:
        shape = "x".join(map(str, p.input))
        mirrors = f"  = torchvision {p.mirrors}" if p.mirrors else ""
        print(f"{p.name.ljust(width)}  {p.title} ({shape}, {p.num_classes} classes){mirrors}")
    return 0


def _cmd_analyze(args) -> int:
    from explorer.core.analysis import analyze
    from explorer.core.report import csv_text, memtable_text, table_text

    if args.torchvision:
        from explorer.core.tvmodels import analysis_model, default_input_size

        # the input size of its published weights (ViT-H/14: 518), unless --input says otherwise;
        # a model whose constructor fixes the size (ViT, MaxViT) is built for that size
        size = default_input_size(args.torchvision)
        shape = args.input or (3, size, size)
        model = analysis_model(args.torchvision, num_classes=args.num_classes or 1000,
                               image_size=shape[-1] if len(shape) == 3 else None)
        analysis = analyze(model, shape, batch=args.batch, dtype=args.dtype,
                           optimizer=args.optimizer, name=args.torchvision, source="torchvision")
    else:
        spec = load_spec(args.preset, args.spec)
        if args.num_classes:
            spec = spec.with_num_classes(args.num_classes)
        analysis = analyze(spec, args.input, batch=args.batch, dtype=args.dtype, optimizer=args.optimizer)
    if args.format == "json":
        print(json.dumps(analysis.to_dict(), indent=2))
    elif args.format == "csv":
        sys.stdout.write(csv_text(analysis))
    elif args.format == "memtable":
        print(memtable_text(analysis))
    else:
        print(table_text(analysis))
    return 0


def _cmd_export(args) -> int:
    from explorer.core.export import to_onnx, to_pytorch_source

    spec = load_spec(args.preset, args.spec)
    if args.to == "onnx":
        if not args.output:
            raise ConfigError("ONNX is binary: give an output file with -o FILE.onnx", field="output")
        path = to_onnx(spec, args.output)
        print(f"wrote {path} ({path.stat().st_size:,} bytes)", file=sys.stderr)
        return 0
    text = to_pytorch_source(spec) if args.to == "pytorch" else spec.to_json() + "\n"
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


_TRAIN_FLAGS = ("dataset", "data_root", "epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay",
                "schedule", "label_smoothing", "crop_padding", "flip", "init", "image_size", "overfit", "device", "seed",
                "max_seconds",
                "init_from", "freeze", "pretrained_lr_scale", "freeze_bn", "train_per_class")  # [transfer] last 5


def _train_config(args) -> TrainConfig:
    """The TrainConfig from --config FILE and the flags (flags win); ConfigError when bad."""
    from explorer.training.config import TrainConfig
    from explorer.training.runs import load_json

    values = {}
    if args.config:
        try:
            values = load_json(Path(args.config))
        except ValueError as e:
            raise ConfigError(f"--config {args.config}: {e}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"--config {args.config} must hold a JSON object of training settings")
    elif args.dataset is None:
        raise ConfigError("give --dataset NAME (e.g. mnist5k, which works offline) or --config FILE")
    else:  # a preset starts from the recipe the search found for it (explorer/search/recipes)
        from explorer.search.recipes import recipe_values

        values = recipe_values(getattr(args, "preset", None), args.dataset)
    values.update({k: getattr(args, k) for k in _TRAIN_FLAGS if getattr(args, k) is not None})
    if values.get("init_from") and not getattr(args, "run_dir", None):  # [transfer] an absolute path (a queued
        # run, --run-dir, records a missing source in its own folder instead)
        from explorer.training.transfer import resolve_source

        values["init_from"] = str(resolve_source(values["init_from"], getattr(args, "runs_dir", None)).resolve())
    return TrainConfig.from_dict(values)


def check_train_input(spec: NetworkSpec, config: TrainConfig) -> None:
    """Everything `train` can check before it makes a run folder, by the run's own plan
    (explorer.training.plan): the settings and device, the dataset (an image folder must exist),
    the network fitted to the data, the weights to start from and what is frozen, the analysis.
    UserError when not."""
    from explorer.training.plan import plan_run

    if config.dataset == "folder" and not (config.data_root and Path(config.data_root).expanduser().is_dir()):
        raise DataError(f"the image-folder dataset needs --data-root DIR, an existing folder with one "
                        f"sub-folder of images per class; got {config.data_root!r}")
    plan_run(spec, config).raise_if_blocked()


def _cmd_train(args) -> int:
    from explorer.training.executors import executor_name
    from explorer.training.loop import train
    from explorer.training.runs import new_run_dir, runs_root

    spec = load_spec(args.preset, args.spec)
    config = _train_config(args)
    executor_name(args.executor)  # a bad --executor / $CNN_EXPLORER_EXECUTOR exits 2 before anything starts
    if args.run_dir:  # the queue made the folder: the run itself records what is wrong
        run_dir = Path(args.run_dir)
    else:  # nothing is left behind for bad input (exit 2)
        check_train_input(spec, config)
        run_dir = new_run_dir(runs_root(args.runs_dir), spec.name)

    def progress(event: dict) -> None:
        if args.format != "text":
            return
        kind = event["event"]
        if kind == "step":
            print(f"epoch {event['epoch']} step {event['step']}: loss {event['loss']:.4f} acc {event['acc']:.3f} "
                  f"{event['images_per_s']:.0f} img/s, eta {event['eta_s']:.0f} s", flush=True)
        elif kind == "epoch":
            print(f"epoch {event['epoch']}: train loss {event['train_loss']:.4f} acc {event['train_acc']:.3f} | "
                  f"val loss {event['val_loss']:.4f} acc {event['val_acc']:.3f} top-5 {event['val_top5']:.3f}",
                  flush=True)
        elif kind == "warning":
            print(f"warning: {event['message']}", flush=True)
        elif kind == "start":
            print(f"training {spec.name} on {event['dataset']} ({event['train_size']:,} images, "
                  f"{event['val_size']:,} for validation) on {event['device']}: {event['params']:,} params",
                  flush=True)
            if not args.config:  # where the settings the flags did not give come from
                from explorer.search.recipes import recipe_source

                print(f"settings: {recipe_source(args.preset, config.dataset)}; flags override them", flush=True)

    if executor_name(args.executor) == "ray" and not args.run_dir:  # hand the run to the cluster and follow it
        from explorer.training.executors import RayExecutor, run_on

        summary = run_on(RayExecutor(args.ray_address), spec, config, run_dir, on_event=progress)
    else:
        summary = train(spec, config, run_dir, on_event=progress)
    if args.queue:
        from explorer.training.jobs import JobQueue

        try:
            queue = JobQueue(run_dir.parent, db_path=Path(args.queue))
            queue.finish(run_dir, summary)
            queue.refresh()
            queue.schedule()
        except UserError as e:  # the run's folder says how it ended; the next poll of the queue catches up
            print(f"warning: {e}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps({"run_dir": str(run_dir), **summary}, indent=2))
    else:
        best = summary.get("best_val_acc")
        print(f"{summary['status']}: {summary.get('message', '')}; best validation accuracy "
              f"{'-' if best is None else f'{best:.4f}'}; run directory {run_dir}")
    return 0 if summary["status"] == "completed" else EXIT_FAILURE


def _cmd_runs(args) -> int:
    from explorer.training.runs import list_runs, runs_root

    runs = list_runs(runs_root(args.runs_dir))
    if args.format == "json":
        print(json.dumps([r.to_dict() for r in runs], indent=2))
        return 0
    if not runs:
        print("no runs yet: python -m explorer train --preset lenet5 --dataset mnist5k")
        return 0
    print(f"{'run':42s} {'status':11s} {'dataset':10s} {'params':>12s} {'best val':>8s} {'seconds':>8s}  start")
    for r in runs:
        acc = "-" if r.best_val_acc is None else f"{r.best_val_acc:.4f}"
        secs = "-" if r.seconds is None else f"{r.seconds:.1f}"
        params = "-" if r.params is None else f"{r.params:,}"
        print(f"{r.path.name:42s} {r.status:11s} {r.dataset:10s} {params:>12s} {acc:>8s} {secs:>8s}  {r.start}")
    for r in runs:
        if r.status in ("unreadable", "interrupted"):
            print(f"{r.path.name}: {r.status}: {r.message}")
    return 0


def _gradcam_image(args, data, shape: tuple[int, int, int]):
    """(uint8 image (C, H, W), true label or None, what it is) from --image FILE or --index I."""
    from explorer.interpret.images import MAX_UPLOAD_BYTES, check_size, decode_image

    c, h, w = shape
    if args.image is not None:
        path = Path(args.image)
        if not path.is_file():
            raise DataError(f"no image file at {path}")
        check_size(path.stat().st_size)
        with open(path, "rb") as f:
            return decode_image(f.read(MAX_UPLOAD_BYTES + 1), c, (h, w)), None, path.name
    index = 0 if args.index is None else args.index
    if not 0 <= index < len(data.x_val):
        raise ConfigError(f"--index must be from 0 to {len(data.x_val) - 1}, got {index}", field="index")
    return data.x_val[index], int(data.y_val[index]), f"validation image {index}"


def _cmd_gradcam(args) -> int:
    from explorer.interpret.explain import explain, predict, resolve_target
    from explorer.interpret.layers import interpretable
    from explorer.interpret.pictures import overlay_figure_png
    from explorer.training.checkpoint import load_run_data, load_run_model

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise RunError(f"no run directory at {run_dir}; list runs with `python -m explorer runs`")
    spec, model = load_run_model(run_dir)
    model = interpretable(model)
    data = load_run_data(run_dir)  # the validation split, and the normalisation and class names for --image
    image, label, what = _gradcam_image(args, data, spec.input)
    x = data.normalize(image[None])
    target = resolve_target(args.target, data.class_names, int(predict(model, x)[0].argmax()))
    result = explain(model, x, "gradcam", target, args.layer)   # the Inspect page's Grad-CAM, the same function
    title = result.title(data.class_names, label)
    out = Path(args.output)
    overlay_figure_png(image, result.heat, title=title).save(out, format="PNG")
    zero = " (the map is zero: no positive evidence for this class at this layer)" if result.zero else ""
    print(f"wrote {out}: {what}, {title}{zero}", file=sys.stderr)
    return 0


COMMANDS = {"presets": _cmd_presets, "analyze": _cmd_analyze, "train": _cmd_train, "runs": _cmd_runs,
            "export": _cmd_export, "gradcam": _cmd_gradcam,
            "sweep": lambda args: _search_cli().cmd_sweep(args, load_spec),
            "sweeps": lambda args: _search_cli().cmd_sweeps(args)}


def _search_cli():
    from explorer.search import cli

    return cli


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("EXPLORER_DEBUG") == "1"
    try:
        return COMMANDS[args.command](args)
    except UserError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # e.g. `... | head`
        return 0
    except Exception as e:  # noqa: BLE001 - the CLI promises a message, not a traceback
        if debug:
            raise
        print(f"error: {type(e).__name__}: {e} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILURE
