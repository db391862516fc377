"""The class challenge: a teacher sets the rules, students submit runs under a nickname, everyone
sees one leaderboard.

Owns: the challenge's rules (Challenge), the teacher's code ($CNN_EXPLORER_TEACHER_CODE; no code
set means no one can set or reset a challenge), nicknames (plain text, unique per challenge
ignoring case, at most MAX_NICKNAME characters, one per browser session), the check of a
submission against the rules, and the leaderboard (best run per nickname, ranked by accuracy and
by the course score accuracy / (params / 100K)).

Storage: RUNS/challenge.json (the current challenge, written atomically) and RUNS/classroom.sqlite
(nicknames and submissions; short lock waits, errors as QueueError with the path). Submitted
runs are ordinary runs in the runs folder, so Compare and Inspect show them too.
"""

from __future__ import annotations

import math
import os
import secrets
import sqlite3
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd

from explorer.access import code_matches
from explorer.errors import ConfigError, QueueError
from explorer.text import frame_csv
from explorer.training.runs import RunRecord, read_json, write_json_atomic

TEACHER_CODE_ENV = "CNN_EXPLORER_TEACHER_CODE"
CHALLENGE_FILE = "challenge.json"
DB_FILE = "classroom.sqlite"
MAX_NICKNAME = 24                 # characters
MAX_TITLE = 80                    # characters
MAX_SUBMISSIONS = 20              # per nickname and challenge
LOCK_TIMEOUT_SECONDS = 3.0
SCORE_UNIT = 100_000              # the course score: accuracy / (params / 100K)
SCHEMA = ("CREATE TABLE IF NOT EXISTS nicknames (challenge TEXT NOT NULL, key TEXT NOT NULL, nickname TEXT "
          "NOT NULL, owner TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (challenge, key))",
          "CREATE TABLE IF NOT EXISTS submissions (challenge TEXT NOT NULL, nickname TEXT NOT NULL, owner TEXT "
          "NOT NULL, run TEXT NOT NULL, submitted REAL NOT NULL)")


@dataclass(frozen=True)
class Challenge:
    """The rules of one challenge."""

    id: str                 # random token; submissions and the leaderboard belong to it
    title: str              # shown on top of the page (plain text)
    dataset: str            # every submission trains on this dataset
    max_epochs: int         # epoch budget per run
    max_params: int         # parameter budget (the network as adapted to the dataset)
    deadline: float         # unix seconds; no submissions after it
    created: float          # unix seconds

    def open(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.deadline


def teacher_code_ok(code: str | None) -> bool:
    """True when `code` equals $CNN_EXPLORER_TEACHER_CODE (constant-time); never without a code set."""
    return code_matches(TEACHER_CODE_ENV, code)


def _require_teacher(code: str | None) -> None:
    if not os.environ.get(TEACHER_CODE_ENV):
        raise ConfigError(f"no teacher code is set on this server: start it with {TEACHER_CODE_ENV}=... to run "
                          f"a challenge")
    if not teacher_code_ok(code):
        raise ConfigError("that is not the teacher's code")


def new_challenge(title: str, dataset: str, max_epochs: int, max_params: int, deadline: float,
                  now: float | None = None) -> Challenge:
    """Checked rules (ConfigError names the field to change)."""
    from explorer.data import list_datasets

    names = [i.name for i in list_datasets() if i.name != "folder"]  # a folder needs a data root per student
    now = time.time() if now is None else now
    title = " ".join(str(title).split())[:MAX_TITLE] or "Class challenge"
    if dataset not in names:
        raise ConfigError(f"unknown dataset {dataset!r}; choose one of {', '.join(names)}", field="dataset")
    if not isinstance(max_epochs, int) or not 1 <= max_epochs <= 200:
        raise ConfigError("the epoch budget must be a whole number from 1 to 200", field="max_epochs")
    if not isinstance(max_params, int) or not 100 <= max_params <= 100_000_000:
        raise ConfigError("the parameter budget must be a whole number from 100 to 100,000,000", field="max_params")
    if not math.isfinite(deadline) or deadline <= now:
        raise ConfigError("the deadline must be in the future", field="deadline")
    return Challenge(secrets.token_hex(6), title, dataset, max_epochs, max_params, float(deadline), now)


def set_challenge(root: Path, challenge: Challenge, code: str | None) -> None:
    """Make `challenge` the current one (the teacher's code is required)."""
    _require_teacher(code)
    Path(root).mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(root) / CHALLENGE_FILE, asdict(challenge))


def reset(root: Path, code: str | None) -> None:
    """End the current challenge: its file is kept as challenge-ID.json; runs stay in the runs folder."""
    _require_teacher(code)
    current = current_challenge(root)
    if current is not None:
        os.replace(Path(root) / CHALLENGE_FILE, Path(root) / f"challenge-{current.id}.json")


def current_challenge(root: Path) -> Challenge | None:
    """The current challenge, or None (also when the file is missing or not a challenge)."""
    data = read_json(Path(root) / CHALLENGE_FILE)
    try:
        return Challenge(id=str(data["id"]), title=str(data["title"]), dataset=str(data["dataset"]),
                         max_epochs=int(data["max_epochs"]), max_params=int(data["max_params"]),
                         deadline=float(data["deadline"]), created=float(data["created"]))
    except (TypeError, KeyError, ValueError, OverflowError):
        return None


def check_nickname(text: str) -> str:
    """The nickname as stored: white space folded, NFC; ConfigError when empty, too long or not plain text."""
    name = unicodedata.normalize("NFC", " ".join(str(text).split()))
    if not name:
        raise ConfigError("type a nickname", field="nickname")
    if len(name) > MAX_NICKNAME:
        raise ConfigError(f"a nickname has at most {MAX_NICKNAME} characters", field="nickname")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in name):
        raise ConfigError("a nickname is plain text: no control or invisible characters", field="nickname")
    return name


@contextmanager
def _db(root: Path):
    path = Path(root) / DB_FILE
    try:
        db = sqlite3.connect(path, timeout=LOCK_TIMEOUT_SECONDS, isolation_level=None)
    except sqlite3.Error as e:
        raise QueueError(f"the classroom database {path} cannot be opened ({e})") from None
    try:
        for statement in SCHEMA:
            db.execute(statement)
        yield db
    except sqlite3.Error as e:
        what = "is locked by another process" if "locked" in str(e) else f"is damaged or unusable ({e})"
        raise QueueError(f"the classroom database {path} {what}; try again, or move the file away") from None
    finally:
        db.close()


def claim_nickname(root: Path, challenge: Challenge, text: str, owner: str) -> str:
    """Reserve a nickname for this session (idempotent); ConfigError when another session has it."""
    name = check_nickname(text)
    key = name.casefold()
    with _db(root) as db:
        db.execute("BEGIN IMMEDIATE")
        row = db.execute("SELECT owner, nickname FROM nicknames WHERE challenge = ? AND key = ?",
                         (challenge.id, key)).fetchone()
        if row is None:
            db.execute("INSERT INTO nicknames VALUES (?, ?, ?, ?, ?)", (challenge.id, key, name, owner, time.time()))
        db.execute("COMMIT")
    if row is not None and row[0] != owner:
        raise ConfigError(f"the nickname {row[1]!r} is taken; choose another", field="nickname")
    return name if row is None else row[1]


def check_submission(challenge: Challenge, params: int, dataset: str, epochs: int, now: float | None = None) -> None:
    """ConfigError naming the rule a submission breaks (deadline, dataset, epochs, parameters)."""
    if not challenge.open(now):
        raise ConfigError("the challenge's deadline has passed; no more submissions")
    if dataset != challenge.dataset:
        raise ConfigError(f"this challenge trains on {challenge.dataset}, not {dataset}", field="dataset")
    if epochs > challenge.max_epochs:
        raise ConfigError(f"{epochs} epochs is over the budget of {challenge.max_epochs}", field="epochs")
    if params > challenge.max_params:
        raise ConfigError(f"the network has {params:,} parameters, over the budget of {challenge.max_params:,}; "
                          f"use fewer or thinner layers", field="params")


def record_submission(root: Path, challenge: Challenge, nickname: str, owner: str, run_dir: Path) -> None:
    with _db(root) as db:
        db.execute("BEGIN IMMEDIATE")
        mine = db.execute("SELECT COUNT(*) FROM submissions WHERE challenge = ? AND nickname = ?",
                          (challenge.id, nickname)).fetchone()[0]
        if mine >= MAX_SUBMISSIONS:
            db.execute("ROLLBACK")
            raise ConfigError(f"{nickname} has submitted {mine} runs, the most allowed in one challenge")
        db.execute("INSERT INTO submissions VALUES (?, ?, ?, ?, ?)",
                   (challenge.id, nickname, owner, Path(run_dir).name, time.time()))
        db.execute("COMMIT")


def submissions(root: Path, challenge: Challenge) -> list[tuple[str, str]]:
    """(nickname, run folder name) of every submission, oldest first."""
    with _db(root) as db:
        rows = db.execute("SELECT nickname, run FROM submissions WHERE challenge = ? ORDER BY submitted",
                          (challenge.id,)).fetchall()
    return [(str(n), str(r)) for n, r in rows]


LEADERBOARD_COLUMNS = ("Rank", "Nickname", "Accuracy", "Parameters", "Score", "Status", "Runs", "Run")


def leaderboard(entries: Iterable[tuple[str, str]], records: dict[str, RunRecord], by: str = "accuracy") -> pd.DataFrame:
    """Best run per nickname, ranked by validation accuracy (by="accuracy") or the course score
    (by="score"); ties go to fewer parameters. Runs not finished yet count with no accuracy."""
    key = "Score" if by == "score" else "Accuracy"
    best: dict[str, dict] = {}
    for nickname, run in entries:
        r = records.get(run)
        acc = r.best_val_acc if r is not None and r.best_val_acc is not None else None
        params = r.params if r is not None else None
        score = acc / (params / SCORE_UNIT) if acc is not None and params else None
        row = {"Nickname": nickname, "Accuracy": acc, "Parameters": params, "Score": score,
               "Status": r.status if r is not None else "missing", "Run": run}
        old = best.get(nickname)
        count = (old or {}).get("Runs", 0) + 1
        if old is None or (row[key] or -1) > (old[key] or -1):
            best[nickname] = row
        best[nickname]["Runs"] = count
    rows = sorted(best.values(), key=lambda r: (-(r[key] if r[key] is not None else -1), r["Parameters"] or 0))
    for rank, row in enumerate(rows, 1):
        row["Rank"] = rank
    return pd.DataFrame(rows, columns=list(LEADERBOARD_COLUMNS))


def leaderboard_csv(frame: pd.DataFrame) -> str:
    """The leaderboard as CSV; nicknames are made inert for spreadsheets (explorer.text.frame_csv)."""
    return frame_csv(frame)
