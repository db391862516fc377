"""Text renderings of an Analysis: a torchinfo-like table, CSV, and the cs231n memory table.

Rows, totals and formatting stay apart (torchinfo's layer_info / model_statistics / formatting
split): this module only lays out numbers that explorer.core.analysis computed, printed with
explorer.units (the one place that knows how a count, a size or MACs are written).
"""

from __future__ import annotations

import csv
import io
import math

from explorer.core.analysis import Analysis, LayerRow
from explorer.units import format_bytes, format_count, format_short


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) if shape else "-"


def _rf(row: LayerRow) -> str:
    if row.receptive_field is None:
        return "-"
    h, w = row.receptive_field
    return str(h) if h == w else f"{h}x{w}"


COLUMNS = ("name", "type", "output_shape", "params", "trainable_params", "macs", "flops", "activations",
           "activation_bytes", "saved_bytes", "receptive_field", "jump", "formula")


def table_text(analysis: Analysis) -> str:
    """A fixed-width table in the spirit of torchinfo.summary, plus totals and memory."""
    t = analysis.totals
    header = ("Layer", "Output shape", "Params", "MACs", "Activations", "RF")
    rows = [(f"{r.name} ({r.type})", _shape(r.output_shape), format_count(r.params), format_count(r.macs),
             format_count(r.activations), _rf(r)) for r in analysis.rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = "=" * (sum(widths) + 2 * (len(widths) - 1))
    fmt = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    m = t.memory
    out = [f"{analysis.name}: input {_shape(analysis.input_shape)}, batch {analysis.batch}, {analysis.dtype}",
           line, fmt(header), line, *(fmt(r) for r in rows), line,
           f"Total params:            {format_count(t.params)}",
           f"Trainable params:        {format_count(t.trainable_params)}",
           f"Non-trainable params:    {format_count(t.params - t.trainable_params)}",
           f"MACs per image:          {format_count(t.macs)} ({format_short(t.macs)}; FLOPs = 2 x MACs)",
           f"Activations per image:   {format_count(t.activations)} (sum of the rows' outputs)",
           f"Activation memory:       {format_bytes(t.activation_bytes)} (batch {analysis.batch})",
           line,
           f"Training memory at batch {analysis.batch}, {analysis.dtype}, optimizer {analysis.optimizer}:",
           f"  parameters             {format_bytes(m.parameters)}",
           f"  buffers                {format_bytes(m.buffers)}",
           f"  gradients              {format_bytes(m.gradients)}",
           f"  optimizer state        {format_bytes(m.optimizer_state)}",
           f"  saved for backward     {format_bytes(m.saved_activations)}",
           f"  workspace (estimate)   {format_bytes(m.workspace)}",
           f"  total                  {format_bytes(m.total)}",
           line]
    out += [f"warning: {w}" for w in analysis.warnings]
    return "\n".join(out)


def csv_text(analysis: Analysis) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in analysis.rows:
        d = r.to_dict()
        writer.writerow([_shape(r.output_shape) if c == "output_shape"
                         else _rf(r) if c == "receptive_field"
                         else ("x".join(map(str, r.jump)) if r.jump else "") if c == "jump"
                         else d[c] for c in COLUMNS])
    return buffer.getvalue()


def _hwc(shape: tuple[int, ...]) -> tuple[str, str]:
    """cs231n writes [H x W x C] and the memory product in that order."""
    if len(shape) == 3:
        c, h, w = shape
        return f"[{h}x{w}x{c}]", f"{h}*{w}*{c}"
    return f"[1x1x{shape[0]}]", f"{shape[0]}"


def _weights_text(row: LayerRow, previous: tuple[int, ...] = ()) -> tuple[str, int]:
    """Weights without bias, as the slide counts them: conv (F*F*D)*K, FC in*out (the first FC
    after a feature map as H*W*C*out, e.g. 7*7*512*4096; `previous` is that map's C,H,W)."""
    if row.params == 0:
        return "0", 0
    if row.label.startswith("CONV") and len(row.input_shape) == 3:
        k = int(row.label[4:].split("-")[0])
        d, out = row.input_shape[0], row.output_shape[0]
        weights = k * k * d * out
        if row.params in (weights, weights + out):  # ungrouped conv, with or without bias
            return f"({k}*{k}*{d})*{out} = {format_count(weights)}", weights
    if row.label == "FC" and len(row.input_shape) == 1:
        weights = row.input_shape[0] * row.output_shape[0]
        if row.params in (weights, weights + row.output_shape[0]):
            if len(previous) == 3 and math.prod(previous) == row.input_shape[0]:
                c, h, w = previous
                return f"{h}*{w}*{c}*{row.output_shape[0]} = {format_count(weights)}", weights
            return f"{format_count(row.input_shape[0])}*{format_count(row.output_shape[0])} = {format_count(weights)}", weights
    return f"{format_count(row.params)}", row.params


def memtable_rows(analysis: Analysis) -> list[dict]:
    """The rows the cs231n table shows: the input, then every layer that is not element-wise
    (ReLU, batch norm, dropout, flatten fold into the layer before them)."""
    first = analysis.input_shape
    rows = [{"label": "INPUT", "shape": first, "memory": math.prod(first), "weights_text": "0",
             "weights": 0, "params": 0}]
    for r in analysis.rows:
        if r.elementwise:
            if rows and r.params:  # batch norm's gamma/beta belong to the layer before
                rows[-1]["params"] += r.params
            continue
        text, weights = _weights_text(r, rows[-1]["shape"])
        rows.append({"label": r.label, "shape": r.output_shape, "memory": r.activations, "weights_text": text,
                     "weights": weights, "params": r.params})
    return rows


def memtable_text(analysis: Analysis) -> str:
    """The cs231n VGG-16 memory table for any network, with the true sums."""
    rows = memtable_rows(analysis)
    lines = []
    label_w = max(len(r["label"]) for r in rows) + 1
    shape_w = max(len(_hwc(r["shape"])[0]) for r in rows)
    for r in rows:
        bracket, product = _hwc(r["shape"])
        memory = f"{product}={format_short(r['memory'])}" if "*" in product else product
        params = r["weights_text"]
        extra = r["params"] - r["weights"]
        if extra > 0 and r["weights"] > 0:
            kind = "bias" if extra == (r["shape"][0] if r["shape"] else -1) else "bias/norm"
            params += f"  (+{format_count(extra)} {kind})"
        lines.append(f"{(r['label'] + ':').ljust(label_w)} {bracket.ljust(shape_w)}  memory: {memory.ljust(20)}"
                     f"  params: {params}")
    total_memory = sum(r["memory"] for r in rows)
    esize = analysis.dtype_size
    weights = sum(r["weights"] for r in rows)
    lines += ["",
              f"TOTAL memory: {format_count(total_memory)} values ({format_short(total_memory)}) * {esize} bytes = "
              f"{format_bytes(total_memory * esize)} / image (forward only; roughly x2 with backward)",
              f"  (counts the input and the rows above; the layer table's activation total, "
              f"{format_short(analysis.totals.activations)}, also counts the outputs of element-wise layers)",
              f"TOTAL params: {format_count(analysis.totals.params)} ({format_short(analysis.totals.params)}) parameters"
              + (f"; {format_count(weights)} weights in the rows above, the rest biases and norms"
                 if 0 < weights < analysis.totals.params else "")]
    return "\n".join(lines)
