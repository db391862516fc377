"""Quiz mode: the analysis with chosen cells hidden, students' answers checked, the working shown.

Owns: which cells a quiz hides (QuizSettings, also as a short link parameter), the questions made
from an Analysis (the layer table or the cs231n memory table), how a typed answer is read and
judged, the worked explanation with the numbers substituted, and the ready-made quizzes.

Judging (stated on the page):
- output shape and receptive field: exact. A shape may be typed H x W x C (cs231n's order) or
  C x H x W (PyTorch's), with x, *, commas or spaces between; a flat vector as one number.
- parameters and MACs: exact integers (commas, spaces, underscores and K/M/G suffixes allowed, but
  the value must be exact). In the memory table the slide counts weights without biases; both the
  weight count and the full parameter count (biases and norms included) are accepted.
- memory (activation values per image): within 1% of the true count, or within the rounding of
  the number as typed (3.2M stands for 3.15M..3.25M), whichever is wider.
- a window that "doesn't fit" ((W - F + 2P)/S + 1 not an integer): "doesn't fit" is accepted, and
  so is the size PyTorch actually gives (it rounds down).
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from explorer.core.analysis import Analysis, LayerRow
from explorer.errors import ConfigError
from explorer.core.report import memtable_rows
from explorer.core.spec import NetworkSpec

QUIZ_DIR = Path(__file__).resolve().parents[2] / "assets" / "quizzes"  # ready-made quizzes (JSON)

COLUMNS: dict[str, str] = {  # column key -> heading on the page
    "output_shape": "Output shape", "params": "Parameters", "macs": "MACs",
    "memory": "Memory (values)", "receptive_field": "Receptive field"}
TABLES = ("layers", "memtable")
MEMORY_TOLERANCE = 0.01          # relative, for the memory column
MAX_ANSWER_CHARS = 64            # longer answers are not read
_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9}
_NOT_FIT = re.compile(r"^(no|does ?n[o']?t fit|not? (an )?integer|doesn't fit|does not fit)\.?$")


@dataclass(frozen=True)
class QuizSettings:
    """What a quiz hides; encoded in a link as ?quiz=cols.rows.fraction.seed.table."""

    columns: tuple[str, ...] = ("output_shape", "params")  # keys of COLUMNS to hide
    rows: str = "all"           # "all": every row; "random": a random share of the rows
    fraction: float = 0.3       # share of rows hidden when rows == "random" (0.05 to 1)
    seed: int = 0               # which random rows (0 to 999,999)
    table: str = "layers"       # "layers": the layer table; "memtable": the cs231n memory table

    def to_query(self) -> str:
        cols = "+".join(self.columns)
        return f"{cols}.{self.rows}.{round(self.fraction * 100)}.{self.seed}.{self.table}"

    @staticmethod
    def from_query(text: str) -> "QuizSettings":
        """Parse a link's quiz parameter strictly; ConfigError with what is wrong."""
        if not isinstance(text, str) or len(text) > 120:
            raise ConfigError("the link's quiz parameter is not a quiz; copy the whole link again")
        parts = text.split(".")
        if len(parts) != 5 or not parts[2].isdigit() or not parts[3].isdigit():
            raise ConfigError("the link's quiz parameter is cut short or altered; copy the whole link again")
        cols = tuple(c for c in parts[0].replace(" ", "+").split("+") if c)
        return QuizSettings(columns=cols, rows=parts[1], fraction=int(parts[2][:4]) / 100,
                            seed=int(parts[3][:7]), table=parts[4]).checked()

    def checked(self) -> "QuizSettings":
        unknown = [c for c in self.columns if c not in COLUMNS]
        if not self.columns or unknown or len(set(self.columns)) != len(self.columns):
            raise ConfigError(f"a quiz hides one or more of {', '.join(COLUMNS)}; got {list(self.columns)!r}")
        if self.rows not in ("all", "random"):
            raise ConfigError(f"quiz rows are 'all' or 'random', got {self.rows!r}")
        if not 0.05 <= self.fraction <= 1:
            raise ConfigError(f"the share of hidden rows must be from 5% to 100%, got {self.fraction:.0%}")
        if not 0 <= self.seed <= 999_999:
            raise ConfigError(f"the quiz seed must be from 0 to 999999, got {self.seed}")
        if self.table not in TABLES:
            raise ConfigError(f"a quiz table is 'layers' or 'memtable', got {self.table!r}")
        if self.table == "memtable" and not set(self.columns) <= {"output_shape", "params", "memory"}:
            raise ConfigError("the memory table has shape, memory and params columns only")
        return self


@dataclass(frozen=True)
class Question:
    """One hidden cell."""

    row: int                    # row number in the quiz table (0-based)
    row_label: str              # e.g. "conv1 (conv)" or "CONV3-64"
    column: str                 # key of COLUMNS
    expected: tuple             # accepted values: ints, shapes as tuples, or ("doesn't fit",)
    answer_text: str            # the answer as the table writes it
    working: str                # the formula with the numbers substituted


@dataclass(frozen=True)
class Verdict:
    correct: bool
    message: str                # one sentence for the student (includes the working when wrong)
    answered: bool = True       # False when the box was left empty


def _rf_text(rf) -> str:
    return "-" if rf is None else (str(rf[0]) if rf[0] == rf[1] else f"{rf[0]}x{rf[1]}")


def _shape_text(shape: tuple[int, ...], hwc: bool) -> str:
    if len(shape) == 3 and hwc:
        c, h, w = shape
        return f"{h}x{w}x{c}"
    return "x".join(map(str, shape))


def _shape_forms(shape: tuple[int, ...]) -> tuple:
    """The shape as C,H,W and as H,W,C (flat vectors as (F,) and (1,1,F))."""
    if len(shape) == 3:
        c, h, w = shape
        return (tuple(shape), (h, w, c))
    return (tuple(shape), (1, 1, shape[0]))


def _macs_working(row: LayerRow) -> str:
    if row.macs == 0:
        return "no multiplications by weights (only comparisons, additions or element-wise functions): 0"
    positions = math.prod(row.output_shape[1:]) if len(row.output_shape) == 3 else 1
    if positions > 1 and row.macs % positions == 0:
        per = row.macs // positions
        h, w = row.output_shape[1:]
        return (f"{per:,} multiply-adds per output position x {h}*{w} positions = {row.macs:,} "
                f"(weights x output positions for a convolution; biases not counted)")
    return f"one multiply-add per weight for each input: {row.macs:,} (biases not counted)"


def _rf_working(row: LayerRow, previous: LayerRow | None) -> str:
    rf_in = (1, 1) if previous is None or previous.receptive_field is None else previous.receptive_field
    jump_in = (1, 1) if previous is None or previous.jump is None else previous.jump
    if row.receptive_field is None:
        return "a flat vector sees the whole image: no receptive field is counted"
    if row.receptive_field == rf_in:
        return f"this layer looks at one position at a time, so the field stays {_rf_text(rf_in)}"
    grow = row.receptive_field[0] - rf_in[0]
    if jump_in[0] and grow % jump_in[0] == 0:
        k = grow // jump_in[0] + 1
        return (f"r_out = r_in + (k - 1) x jump_in = {rf_in[0]} + ({k} - 1) x {jump_in[0]} = "
                f"{row.receptive_field[0]} (jump = product of the strides so far)")
    return f"the widest path through the block grows the field from {_rf_text(rf_in)} to {_rf_text(row.receptive_field)}"


def _layer_questions(analysis: Analysis, columns: tuple[str, ...], rows: list[int]) -> list[Question]:
    out = []
    for i in rows:
        r, prev = analysis.rows[i], analysis.rows[i - 1] if i else None
        label = f"{r.name} ({r.type})"
        fits = not any("does not fit" in w for w in r.warnings)
        for col in columns:
            if col == "output_shape":
                exp = _shape_forms(r.output_shape) + (() if fits else ("doesn't fit",))
                out.append(Question(i, label, col, exp, _shape_text(r.output_shape, True),
                                    r.formula + ("" if fits else "; " + "; ".join(r.warnings))))
            elif col == "params":
                out.append(Question(i, label, col, (r.params,), f"{r.params:,}", r.formula))
            elif col == "macs":
                out.append(Question(i, label, col, (r.macs,), f"{r.macs:,}", _macs_working(r)))
            elif col == "memory":
                dims = "*".join(map(str, r.output_shape))
                out.append(Question(i, label, col, (r.activations,), f"{r.activations:,}",
                                    f"the output's elements: {dims} = {r.activations:,} values per image"))
            elif col == "receptive_field":
                rf = r.receptive_field
                exp = () if rf is None else (rf,)
                out.append(Question(i, label, col, exp, _rf_text(rf), _rf_working(r, prev)))
    return out


def _memtable_questions(analysis: Analysis, columns: tuple[str, ...], rows: list[int]) -> list[Question]:
    table, out = memtable_rows(analysis), []
    for i in rows:
        r = table[i]
        shape = r["shape"]
        hw = "*".join(map(str, (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape))
        for col in columns:
            if col == "output_shape":
                out.append(Question(i, r["label"], col, _shape_forms(shape), f"[{_shape_text(shape, True)}]",
                                    f"H x W x depth after this layer: [{_shape_text(shape, True)}]"))
            elif col == "memory":
                out.append(Question(i, r["label"], col, (r["memory"],), f"{r['memory']:,}",
                                    f"memory = {hw} = {r['memory']:,} values"))
            elif col == "params":
                exp = tuple(dict.fromkeys((r["weights"], r["params"])))
                bias = r["params"] - r["weights"]
                note = f" (+{bias:,} biases/norms = {r['params']:,} in all)" if bias else ""
                out.append(Question(i, r["label"], col, exp, f"{r['weights']:,}",
                                    f"params = {r['weights_text']}{note}"))
    return out


def table_size(analysis: Analysis, table: str) -> int:
    return len(memtable_rows(analysis)) if table == "memtable" else len(analysis.rows)


def make_questions(analysis: Analysis, settings: QuizSettings) -> list[Question]:
    """The hidden cells, row by row. Random rows are drawn with the settings' seed, so a link
    shows every student the same quiz."""
    settings = settings.checked()
    n = table_size(analysis, settings.table)
    rows = list(range(1 if settings.table == "memtable" else 0, n))  # the memory table's INPUT row is given
    if settings.rows == "random" and rows:
        k = max(1, round(settings.fraction * len(rows)))
        rows = sorted(random.Random(settings.seed).sample(rows, k))
    make = _memtable_questions if settings.table == "memtable" else _layer_questions
    return make(analysis, settings.columns, rows)


def _parse_number(text: str) -> tuple[Decimal, Decimal]:
    """(value, half of the last typed digit's unit) of '1,728', '3.2M', '15.2 M', '1e6'."""
    m = re.fullmatch(r"([0-9][0-9,_ ]*(?:\.[0-9]*)?)\s*([kmgb]?)", text.strip().lower())
    if not m:
        raise ValueError
    digits = m.group(1).replace(",", "").replace("_", "").replace(" ", "")
    try:
        value = Decimal(digits)
    except InvalidOperation:
        raise ValueError from None
    scale = _SUFFIX[m.group(2)]
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return value * scale, Decimal(scale) / (10 ** decimals) / 2


def _parse_shape(text: str) -> tuple[int, ...]:
    cleaned = text.strip().strip("[]()").strip()
    parts = [p for p in re.split(r"\s*[x×*,]\s*|\s+", cleaned.lower()) if p]
    if not parts or len(parts) > 3 or not all(p.isdigit() and len(p) < 10 for p in parts):
        raise ValueError
    return tuple(int(p) for p in parts)


def _matches(q: Question, text: str) -> bool:
    if q.column == "output_shape":
        if "doesn't fit" in q.expected and _NOT_FIT.match(text.strip().lower().replace("’", "'")):
            return True
        return _parse_shape(text) in [e for e in q.expected if isinstance(e, tuple)]
    if q.column == "receptive_field":
        shape = _parse_shape(text)
        rf = shape * 2 if len(shape) == 1 else shape
        return bool(q.expected) and rf == tuple(q.expected[0])
    value, half_unit = _parse_number(text)
    if q.column == "memory":
        true = Decimal(q.expected[0])
        return abs(value - true) <= max(true * Decimal(MEMORY_TOLERANCE), half_unit)
    return value == value.to_integral_value() and int(value) in q.expected


def check(question: Question, answer: str) -> Verdict:
    """Judge a typed answer (rules in the module docstring); never raises on any text."""
    text = str(answer or "").strip()[:MAX_ANSWER_CHARS]
    if not text:
        return Verdict(False, f"no answer; it is {question.answer_text}", answered=False)
    try:
        ok = _matches(question, text)
    except ValueError:
        kind = "a shape such as 28x28x6" if question.column in ("output_shape", "receptive_field") \
            else "a number such as 1,728 or 3.2M"
        return Verdict(False, f"'{text}' is not {kind}. Working: {question.working}")
    if ok:
        return Verdict(True, f"correct: {question.answer_text}")
    return Verdict(False, f"not quite: {question.answer_text}. Working: {question.working}")


@dataclass(frozen=True)
class QuizPart:
    """One network of a ready-made quiz, with what it hides."""

    caption: str
    spec: NetworkSpec
    settings: QuizSettings


@dataclass(frozen=True)
class ReadyQuiz:
    """A ready-made quiz (assets/quizzes/NAME.json): a title, an introduction and its parts."""

    name: str
    title: str
    intro: str
    parts: tuple[QuizPart, ...]


def _settings_from_dict(data: dict) -> QuizSettings:
    allowed = {"columns", "rows", "fraction", "seed", "table"}
    if not isinstance(data, dict) or set(data) - allowed:
        raise ConfigError(f"quiz settings take {', '.join(sorted(allowed))}")
    values = dict(data)
    if "columns" in values:
        values["columns"] = tuple(values["columns"])
    return QuizSettings(**values).checked()


def load_ready_made(name: str) -> ReadyQuiz:
    """A quiz shipped in assets/quizzes (a file of this package's, so errors are bugs, not input)."""
    from explorer.core.presets import load_preset

    path = QUIZ_DIR / f"{name}.json"
    if name not in ready_made_names():
        raise ConfigError(f"no ready-made quiz {name!r}; choose one of {', '.join(ready_made_names())}")
    data = json.loads(path.read_text(encoding="utf-8"))
    parts = tuple(QuizPart(caption=p["caption"],
                           spec=load_preset(p["preset"]) if "preset" in p else NetworkSpec.from_dict(p["spec"]),
                           settings=_settings_from_dict(p["settings"])) for p in data["parts"])
    return ReadyQuiz(name=name, title=data["title"], intro=data["intro"], parts=parts)


def ready_made_names() -> list[str]:
    return sorted(p.stem for p in QUIZ_DIR.glob("*.json"))


def score(verdicts: list[Verdict]) -> tuple[int, int]:
    """(correct, asked)."""
    return sum(v.correct for v in verdicts), len(verdicts)


__all__ = ["COLUMNS", "TABLES", "MEMORY_TOLERANCE", "QuizSettings", "Question", "Verdict", "make_questions",
           "check", "score", "table_size", "QuizPart", "ReadyQuiz", "load_ready_made", "ready_made_names"]
