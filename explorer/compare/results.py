"""Comparing training runs: the runs table, the course's efficiency score, the Pareto front, a
parameter-budget leaderboard, per-epoch curves and a side-by-side diff of two architectures.
No streamlit here: the Compare page, notebooks and tests use the same functions.

Conventions:
- accuracy is the best validation accuracy of a run, a fraction in [0, 1] in RunRecord and in
  the score, shown as a percentage in the tables;
- efficiency = accuracy / (params / 100K), the course's compact-model score: 90% accuracy with
  50,000 parameters scores 0.9 / 0.5 = 1.8; the same accuracy with 1M parameters scores 0.09;
- the Pareto front (per dataset: accuracies on different datasets do not compare) holds the runs
  that no other run beats on both counts, i.e. no run is at least as accurate with at most as
  many parameters and strictly better in one of the two.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from explorer.core.analysis import Analysis, LayerRow
from explorer.core.registry import block_types, get_block, resolve_params
from explorer.core.spec import NetworkSpec
from explorer.training.runs import RunRecord, read_metrics
from explorer.text import frame_csv

EFFICIENCY_UNIT = 100_000  # the course's score counts parameters in units of 100K

# The runs table's columns, in order (the Compare page, its CSV download and the tests use them).
RUN = "Run"                       # run directory name (unique)
NETWORK = "Network"               # spec name
DATASET = "Dataset"
PARAMS = "Params"                 # parameter elements, biases included
MACS = "MACs"                     # multiply-accumulates per image, bias excluded
ACC = "Best val acc (%)"          # best validation accuracy, percent
EFFICIENCY = "Efficiency"         # accuracy / (params / 100K), accuracy as a fraction
SECONDS = "Time (s)"              # wall time of the whole run
IMAGES_PER_S = "Images/s"         # training throughput
EPOCHS = "Epochs"                 # epochs finished
STATUS = "Status"
PARETO = "Pareto"                 # on its dataset's accuracy-vs-params front
START = "Start"                   # [transfer] scratch, linear probe, frozen 1-N or fine-tuned <- source
RUN_COLUMNS = (RUN, NETWORK, DATASET, START, PARAMS, MACS, ACC, EFFICIENCY, SECONDS, IMAGES_PER_S, EPOCHS,
               STATUS, PARETO)


def efficiency_score(accuracy: float | None, params: int | None) -> float | None:
    """accuracy / (params / 100K), accuracy a fraction; None when either is unknown."""
    if accuracy is None or not params or params <= 0 or not math.isfinite(accuracy):
        return None
    return accuracy / (params / EFFICIENCY_UNIT)


def pareto_front(params: Sequence[float | None], accuracy: Sequence[float | None]) -> list[int]:
    """Indices of the points no other point dominates (fewer or equal params and higher or equal
    accuracy, one of them strictly), ordered by params. Points missing either value are skipped;
    of exact duplicates the first is kept."""
    points = [(p, -a, i) for i, (p, a) in enumerate(zip(params, accuracy))
              if p is not None and a is not None and not (isinstance(p, float) and math.isnan(p))
              and not (isinstance(a, float) and math.isnan(a))]
    front, best = [], -math.inf
    for p, neg_a, i in sorted(points):  # by params, then by accuracy (highest first)
        if -neg_a > best:
            front.append(i)
            best = -neg_a
    return front


def runs_frame(records: Iterable[RunRecord]) -> pd.DataFrame:
    """One row per readable run with RUN_COLUMNS, the most accurate first (runs without an
    accuracy last). Unreadable runs have no numbers to compare: list them with `unreadable_runs`."""
    records = [r for r in records if r.readable]
    frame = pd.DataFrame({
        RUN: [r.path.name for r in records],
        NETWORK: [r.name for r in records],
        DATASET: [r.dataset for r in records],
        START: [r.start for r in records],  # [transfer]
        PARAMS: pd.array([r.params for r in records], dtype="Int64"),
        MACS: pd.array([r.macs for r in records], dtype="Int64"),
        ACC: pd.array([None if r.best_val_acc is None else 100 * r.best_val_acc for r in records], dtype="Float64"),
        EFFICIENCY: pd.array([efficiency_score(r.best_val_acc, r.params) for r in records], dtype="Float64"),
        SECONDS: pd.array([r.seconds for r in records], dtype="Float64"),
        IMAGES_PER_S: pd.array([None if r.images_per_s is None else round(r.images_per_s) for r in records],
                               dtype="Int64"),
        EPOCHS: pd.array([r.epochs_done for r in records], dtype="Int64"),
        STATUS: [r.status for r in records],
        PARETO: [False] * len(records),
    }, columns=list(RUN_COLUMNS))
    for _, group in frame.groupby(DATASET, sort=False):
        front = pareto_front(_values(group[PARAMS]), _values(group[ACC]))
        frame.loc[group.index[front], PARETO] = True
    return frame.sort_values([ACC, PARAMS], ascending=[False, True], na_position="last",
                             kind="stable").reset_index(drop=True)


def unreadable_runs(records: Iterable[RunRecord]) -> list[tuple[str, str]]:
    """(run folder, why) of each run whose files cannot be read."""
    return [(r.path.name, r.message) for r in records if not r.readable]


def _values(series: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in series]


def runs_csv(frame: pd.DataFrame) -> str:
    """The runs table as CSV; network names are visitors' text, made inert for spreadsheets."""
    return frame_csv(frame)


def leaderboard(frame: pd.DataFrame, budget: int, dataset: str | None = None) -> pd.DataFrame:
    """The class challenge: best validation accuracy with at most `budget` parameters.

    Runs with an accuracy and a parameter count within the budget (on `dataset` if given),
    ranked by accuracy, ties to the smaller network; with a Rank and the share of the budget used.
    """
    rows = frame[frame[ACC].notna() & frame[PARAMS].notna() & (frame[PARAMS] <= budget)]
    if dataset is not None:
        rows = rows[rows[DATASET] == dataset]
    rows = rows.sort_values([ACC, PARAMS, SECONDS], ascending=[False, True, True], kind="stable")
    board = rows[[RUN, NETWORK, DATASET, PARAMS, ACC, EFFICIENCY, MACS, STATUS]].reset_index(drop=True)
    board.insert(0, "Rank", range(1, len(board) + 1))
    board.insert(5, "Budget used (%)", (100 * board[PARAMS].astype("Float64") / budget) if budget else 0.0)
    return board


def over_budget(frame: pd.DataFrame, budget: int, dataset: str | None = None) -> int:
    """How many runs with an accuracy exceed the budget (they do not enter the leaderboard)."""
    rows = frame[frame[ACC].notna() & frame[PARAMS].notna() & (frame[PARAMS] > budget)]
    if dataset is not None:
        rows = rows[rows[DATASET] == dataset]
    return len(rows)


# --- curves ---------------------------------------------------------------------------------------
CURVE_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc")


def epoch_curves(run_dir: Path) -> pd.DataFrame:
    """Per-epoch series of one run (CURVE_COLUMNS, accuracies as fractions); empty when the run
    has not finished an epoch yet."""
    events, _ = read_metrics(Path(run_dir))
    rows = [{k: e.get(k) for k in CURVE_COLUMNS} for e in events if e.get("event") == "epoch"]
    return pd.DataFrame(rows, columns=list(CURVE_COLUMNS))


# --- architecture diff ------------------------------------------------------------------------------
SAME, CHANGED, REPLACED, ONLY_A, ONLY_B = "same", "changed", "replaced", "only in A", "only in B"
DIFF_COLUMNS = ("A layer", "A output", "A params", "A MACs", "Change", "B layer", "B output", "B params",
                "B MACs", "What differs")


def _block_of(spec: NetworkSpec, row: LayerRow):
    return spec.blocks[row.block_index] if row.block_index is not None else None


def _kind(row: LayerRow) -> str:
    """What a layer is for, coarsely (conv, pooling, activation, ...; the block's registry entry
    says): the diff aligns on this, so a tanh facing a relu is one replaced activation, not a
    removal and an addition."""
    if row.type not in block_types():  # module rows (torchvision) have class names as types
        return row.type
    return get_block(row.type).diff_kind()


def _settings(spec: NetworkSpec, row: LayerRow) -> dict:
    block = _block_of(spec, row)
    return {} if block is None else dict(resolve_params(block))


def _field_changes(spec_a: NetworkSpec, ra: LayerRow, spec_b: NetworkSpec, rb: LayerRow) -> str:
    pa, pb = _settings(spec_a, ra), _settings(spec_b, rb)
    return ", ".join(f"{k} {pa.get(k)} → {pb.get(k)}" for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k))


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) if shape else "-"


def _side(row: LayerRow | None) -> list:
    if row is None:
        return ["", "", None, None]
    return [row.name, _shape(row.output_shape), row.params, row.macs]


def _align(kinds_a: Sequence, kinds_b: Sequence, sigs_a: Sequence, sigs_b: Sequence) -> list[tuple[int, int]]:
    """Index pairs of the best alignment (a weighted longest common subsequence, by dynamic
    programming): layers of the same kind may pair, and a pair with identical type and settings
    counts double, so identical blocks find each other (ResNet-18's blocks inside ResNet-34's)."""
    n, m = len(kinds_a), len(kinds_b)

    def weight(i: int, j: int) -> int:
        return 0 if kinds_a[i] != kinds_b[j] else 2 if sigs_a[i] == sigs_b[j] else 1

    table = [[0] * (m + 1) for _ in range(n + 1)]  # best score of a[i:], b[j:]
    for i in range(n - 1, -1, -1):
        row, below = table[i], table[i + 1]
        for j in range(m - 1, -1, -1):
            w = weight(i, j)
            row[j] = max(below[j], row[j + 1], below[j + 1] + w if w else 0)
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        w = weight(i, j)
        if w and table[i][j] == table[i + 1][j + 1] + w:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _signature(spec: NetworkSpec, row: LayerRow) -> tuple:
    return (row.type, tuple(sorted((k, repr(v)) for k, v in _settings(spec, row).items())))


def architecture_diff(spec_a: NetworkSpec, a: Analysis, spec_b: NetworkSpec, b: Analysis) -> pd.DataFrame:
    """Two networks side by side, layer against layer (block rows of each analysis), aligned
    by what each layer is (conv, pooling, activation, linear...), identical blocks first, then
    compared:
    same (type and settings), changed (same type, other settings: 'What differs' names the
    fields), replaced (another type), only in A, only in B. A same layer that sees another input
    size says so."""
    out: list[list] = []

    def pair(ra: LayerRow | None, rb: LayerRow | None) -> None:
        if ra is None or rb is None:
            out.append(_side(ra) + [ONLY_A if rb is None else ONLY_B] + _side(rb) + [""])
            return
        if ra.type != rb.type:
            change, note = REPLACED, f"{ra.type} → {rb.type}"
        else:
            note = _field_changes(spec_a, ra, spec_b, rb)
            change = CHANGED if note else SAME
        if ra.input_shape != rb.input_shape and change == SAME:
            note = ", ".join(filter(None, (note, f"input {_shape(ra.input_shape)} → {_shape(rb.input_shape)}")))
        out.append(_side(ra) + [change] + _side(rb) + [note])

    matches = _align([_kind(r) for r in a.rows], [_kind(r) for r in b.rows],
                     [_signature(spec_a, r) for r in a.rows], [_signature(spec_b, r) for r in b.rows])
    i = j = 0
    for mi, mj in matches + [(len(a.rows), len(b.rows))]:
        left, right = a.rows[i:mi], b.rows[j:mj]  # the unmatched run before this match
        if len(left) == len(right):  # a substitution, layer for layer
            for ra, rb in zip(left, right):
                pair(ra, rb)
        else:
            for ra in left:
                pair(ra, None)
            for rb in right:
                pair(None, rb)
        if mi < len(a.rows):
            pair(a.rows[mi], b.rows[mj])
        i, j = mi + 1, mj + 1
    frame = pd.DataFrame(out, columns=list(DIFF_COLUMNS))
    for col in ("A params", "A MACs", "B params", "B MACs"):
        frame[col] = pd.array(frame[col], dtype="Int64")
    return frame


def diff_totals(a: Analysis, b: Analysis) -> pd.DataFrame:
    """Totals of both networks and B / A for each measure."""
    measures = (("Input (per image)", _shape(a.input_shape), _shape(b.input_shape), None),
                ("Layers (block rows)", len(a.rows), len(b.rows), None),
                ("Params", a.totals.params, b.totals.params, None),
                ("MACs per image", a.totals.macs, b.totals.macs, None),
                ("Activations per image (values)", a.totals.activations, b.totals.activations, None))
    rows = []
    for name, va, vb, _ in measures:
        ratio = f"{vb / va:.2f}×" if isinstance(va, int) and isinstance(vb, int) and va else ""
        rows.append({"Measure": name, "A": f"{va:,}" if isinstance(va, int) else va,
                     "B": f"{vb:,}" if isinstance(vb, int) else vb, "B / A": ratio})
    return pd.DataFrame(rows)


__all__ = ["EFFICIENCY_UNIT", "RUN_COLUMNS", "DIFF_COLUMNS", "efficiency_score",
           "unreadable_runs",
           "pareto_front", "runs_frame", "runs_csv", "leaderboard", "over_budget", "epoch_curves",
           "architecture_diff", "diff_totals"]
