"""The network as a diagram: Graphviz DOT text made from an Analysis (and SVG when Graphviz's
`dot` program is installed). No streamlit here; the Build page shows the DOT with
st.graphviz_chart, which renders it in the browser with no network access.

Owns how a network is drawn: one node per block with its output shape and parameters, edges
labelled with the tensor shape that flows along them, composite blocks as a box holding their
branches (the registry's `Branches` of each block type: ResNet's skip connection, GoogLeNet's four
paths, DenseNet's concatenation, SE's channel scaling), the fill colour by each block's share of
the parameters, MACs or memory, and the selected block outlined. The network's name is the only
user text; it is escaped as a DOT string.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from explorer.core.analysis import Analysis, LayerRow
from explorer.errors import DataError
from explorer.core.registry import get_block, resolve_params
from explorer.units import format_count, format_short
from explorer.core.spec import NetworkSpec
from explorer.text import printable

METRICS = {"params": "parameters", "macs": "MACs", "memory": "activation memory"}
LOW, HIGH = (255, 255, 255), (244, 162, 89)   # fill colour at 0% and 100% of the largest block
SELECTED_COLOR = "#d62728"
SVG_TIMEOUT_SECONDS = 20
MAX_EXPANDED_BLOCKS = 80   # above this many composite blocks, draw them as single nodes


@dataclass(frozen=True)
class DiagramOptions:
    """How to draw."""

    color_by: str = "params"       # key of METRICS
    selected: int | None = None    # spec block index to outline (all its copies)
    expand: bool = True            # draw composite blocks with their branches
    direction: str = "TB"          # "TB" (top to bottom) or "LR" (left to right)


def dot_string(text: str) -> str:
    """A DOT quoted string holding `text` literally (one line; invisible characters as '?')."""
    text = printable(" ".join(str(text).split()))
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(*lines: str) -> str:
    """A multi-line DOT label: each line escaped, joined with DOT's \\n."""
    return '"' + "\\n".join(dot_string(line)[1:-1] for line in lines) + '"'


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def _metric(row: LayerRow, color_by: str) -> int:
    return row.activation_bytes if color_by == "memory" else getattr(row, color_by)


def _fill(share: float) -> str:
    share = min(max(share, 0.0), 1.0)
    r, g, b = (round(lo + (hi - lo) * share) for lo, hi in zip(LOW, HIGH))
    return f"#{r:02x}{g:02x}{b:02x}"


def _head(row: LayerRow, color_by: str) -> tuple[str, str]:
    title = f"{row.name} · {row.label}"
    if color_by == "macs":
        figure = f"{format_short(row.macs)} MACs"
    elif color_by == "memory":
        figure = f"{format_short(row.activations)} values"
    else:
        figure = f"{format_count(row.params)} params"
    return title, f"{_shape(row.output_shape)} · {figure}"


def _composite(lines: list[str], nid: str, row: LayerRow, spec: NetworkSpec, head: tuple[str, str],
               style: str) -> tuple[str, str]:
    """A cluster with the block's branches; returns (entry node, exit node)."""
    block = spec.blocks[row.block_index]
    branches = get_block(block.type).branches(row.input_shape, row.output_shape, resolve_params(block))
    lines.append(f"subgraph cluster_{nid} {{")
    lines.append(f"  label={_label(*head)}; {style}")
    entry = f"{nid}_in"
    lines.append(f'  {entry} [shape=point, width=0.06];')
    prev = entry
    for k, text in enumerate(branches.stem):
        lines.append(f"  {nid}_s{k} [label={dot_string(text)}];")
        lines.append(f"  {prev} -> {nid}_s{k};")
        prev = f"{nid}_s{k}"
    fork = prev
    merge = f"{nid}_m"
    if branches.merge:
        lines.append(f"  {merge} [label={dot_string(branches.merge)}, shape=circle, width=0.3, fixedsize=false];")
    ends = []
    for j, path in enumerate(branches.paths):
        if not path:  # the identity shortcut
            lines.append(f'  {fork} -> {merge} [style=dashed, label="identity"];')
            continue
        prev = fork
        for k, text in enumerate(path):
            node = f"{nid}_p{j}_{k}"
            lines.append(f"  {node} [label={dot_string(text)}];")
            lines.append(f"  {prev} -> {node};")
            prev = node
        ends.append(prev)
    exit_ = merge if branches.merge else ends[-1]
    if branches.merge:
        lines += [f"  {end} -> {merge};" for end in ends]
    for k, text in enumerate(branches.after):
        lines.append(f"  {nid}_a{k} [label={dot_string(text)}];")
        lines.append(f"  {exit_} -> {nid}_a{k};")
        exit_ = f"{nid}_a{k}"
    lines.append("}")
    return entry, exit_


def network_dot(analysis: Analysis, spec: NetworkSpec | None = None, options: DiagramOptions = DiagramOptions()) -> str:
    """DOT text for the analysed network (spec given: composite blocks show their branches)."""
    if options.color_by not in METRICS:
        raise DataError(f"colour the diagram by one of {', '.join(METRICS)}, not {options.color_by!r}")
    rows = analysis.rows
    top = max((_metric(r, options.color_by) for r in rows), default=0) or 1
    composites = sum(1 for r in rows if r.block_index is not None and spec is not None
                     and get_block(r.type).branches is not None)
    expand = options.expand and spec is not None and composites <= MAX_EXPANDED_BLOCKS
    lines = ["digraph network {",
             f"graph [rankdir={'LR' if options.direction == 'LR' else 'TB'}, label={dot_string(analysis.name)}, "
             f'labelloc=t, fontname="Helvetica", fontsize=14, nodesep=0.2, ranksep=0.22, bgcolor="transparent"];',
             'node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, fillcolor="#ffffff", '
             'color="#5b6b7f", height=0.3];',
             'edge [fontname="Helvetica", fontsize=8, color="#7f8c9a", fontcolor="#4a5560", arrowsize=0.6];',
             f'input [label={_label("input", _shape(analysis.input_shape))}, style="rounded,dashed"];']
    prev, prev_shape = "input", analysis.input_shape
    for i, row in enumerate(rows):
        nid = f"n{i}"
        share = _metric(row, options.color_by) / top
        chosen = options.selected is not None and row.block_index == options.selected
        outline = f'color="{SELECTED_COLOR}", penwidth=3' if chosen else 'color="#5b6b7f"'
        head = _head(row, options.color_by)
        if expand and row.block_index is not None and get_block(row.type).branches is not None:
            style = f'style="rounded,filled"; fillcolor="{_fill(share)}"; {outline.replace(", ", "; ")};'
            entry, exit_ = _composite(lines, nid, row, spec, head, style)
        else:
            small = ", fontsize=8, height=0.2" if row.elementwise else ""
            lines.append(f'{nid} [label={_label(*head)}, fillcolor="{_fill(share)}", {outline}{small}];')
            entry = exit_ = nid
        lines.append(f"{prev} -> {entry} [label={dot_string(_shape(prev_shape))}];")
        prev, prev_shape = exit_, row.output_shape
    lines.append(f'output [label={_label("output", _shape(analysis.output_shape))}, style="rounded,dashed"];')
    lines.append(f"{prev} -> output [label={dot_string(_shape(prev_shape))}];")
    lines.append("}")
    return "\n".join(lines)


def has_svg() -> bool:
    """True when Graphviz's `dot` program is installed (apt-get install graphviz)."""
    return shutil.which("dot") is not None


def dot_to_svg(dot: str) -> bytes:
    """SVG bytes from DOT text with Graphviz's `dot`; DataError when it is missing or fails."""
    exe = shutil.which("dot")
    if exe is None:
        raise DataError("SVG needs Graphviz's 'dot' program on the server (apt-get install graphviz); "
                        "download the .dot file and open it in any Graphviz viewer instead")
    try:
        done = subprocess.run([exe, "-Tsvg"], input=dot.encode("utf-8"), capture_output=True,
                              timeout=SVG_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise DataError(f"Graphviz took more than {SVG_TIMEOUT_SECONDS} s; download the .dot file instead") from None
    if done.returncode != 0:
        raise DataError(f"Graphviz could not draw this network: {done.stderr.decode(errors='replace')[:200]}")
    return done.stdout
