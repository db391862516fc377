"""The command line: `python -m explorer COMMAND ...` (stable; scripts and benchmarks rely on it).

Errors go to stderr with exit status 2 for bad input (a SpecError: unknown preset, bad spec,
shapes that do not fit) and 1 for other failures; a traceback only with --debug.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from explorer.spec import MAX_SPEC_BYTES, NetworkSpec, SpecError

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
    from explorer.analysis import DTYPES, OPTIMIZER_STATE

    parser = argparse.ArgumentParser(prog="python -m explorer",
                                     description="CNN Architecture Explorer: analyse and export networks.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("presets", help="list the preset networks")
    p.add_argument("--format", choices=("table", "json"), default="table")

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

    p = sub.add_parser("export", help="write the network as PyTorch source, spec JSON or ONNX")
    _source_group(p, torchvision=False)
    p.add_argument("--to", choices=("pytorch", "json", "onnx"), required=True)
    p.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout; required for onnx)")
    return parser


def load_spec(preset: str | None, spec_path: str | None) -> NetworkSpec:
    if preset is not None:
        from explorer.presets import load_preset

        return load_preset(preset)
    path = Path(spec_path)
    if not path.is_file():
        raise SpecError(f"no spec file at {spec_path}; pass a JSON file written by `export --to json` "
                        f"or the app's download button")
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise SpecError(f"{spec_path} is {path.stat().st_size:,} bytes; a spec may be at most {MAX_SPEC_BYTES:,}")
    return NetworkSpec.from_json(path.read_bytes())


def _cmd_presets(args) -> int:
    from explorer.presets import list_presets

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
    from explorer.analysis import analyze
    from explorer.report import csv_text, memtable_text, table_text

    if args.torchvision:
        from explorer.tvmodels import default_input_size, torchvision_model

        size = default_input_size(args.torchvision) if args.input is None else None
        model = torchvision_model(args.torchvision, num_classes=args.num_classes or 1000)
        analysis = analyze(model, args.input or (3, size, size), batch=args.batch, dtype=args.dtype,
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
    from explorer.export import to_onnx, to_pytorch_source

    spec = load_spec(args.preset, args.spec)
    if args.to == "onnx":
        if not args.output:
            raise SpecError("ONNX is binary: give an output file with -o FILE.onnx")
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


COMMANDS = {"presets": _cmd_presets, "analyze": _cmd_analyze, "export": _cmd_export}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("EXPLORER_DEBUG") == "1"
    try:
        return COMMANDS[args.command](args)
    except SpecError as e:
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
