"""The class challenge's core (issue 13, deliverable 3): the teacher's code, rules, nicknames,
submissions and the leaderboard."""

from __future__ import annotations

import multiprocessing
import time
from types import SimpleNamespace

import pytest

from explorer.classroom import challenge as cr
from explorer.errors import ConfigError

CODE = "s3cret-teacher"


@pytest.fixture
def teacher(monkeypatch):
    monkeypatch.setenv(cr.TEACHER_CODE_ENV, CODE)


def _challenge(**kw) -> cr.Challenge:
    values = dict(title="Digits under 20K", dataset="digits", max_epochs=5, max_params=20_000,
                  deadline=time.time() + 3600)
    values.update(kw)
    return cr.new_challenge(**values)


def test_only_the_teacher_sets_and_resets(tmp_path, teacher):
    c = _challenge()
    with pytest.raises(ConfigError, match="not the teacher"):
        cr.set_challenge(tmp_path, c, "guess")
    cr.set_challenge(tmp_path, c, CODE)
    assert cr.current_challenge(tmp_path) == c
    with pytest.raises(ConfigError):
        cr.reset(tmp_path, None)
    cr.reset(tmp_path, CODE)
    assert cr.current_challenge(tmp_path) is None and (tmp_path / f"challenge-{c.id}.json").exists()


def test_no_code_set_means_no_challenge(tmp_path, monkeypatch):
    monkeypatch.delenv(cr.TEACHER_CODE_ENV, raising=False)
    assert not cr.teacher_code_ok("") and not cr.teacher_code_ok(None)
    with pytest.raises(ConfigError, match="no teacher code"):
        cr.set_challenge(tmp_path, _challenge(), "")


@pytest.mark.parametrize("kw, field", [({"dataset": "imagenet"}, "dataset"), ({"dataset": "folder"}, "dataset"),
                                       ({"max_epochs": 0}, "max_epochs"), ({"max_params": 10**12}, "max_params"),
                                       ({"deadline": time.time() - 1}, "deadline"),
                                       ({"deadline": float("nan")}, "deadline")])
def test_rules_are_checked(kw, field):
    with pytest.raises(ConfigError) as e:
        _challenge(**kw)
    assert e.value.field == field


def test_a_damaged_challenge_file_is_no_challenge(tmp_path):
    for text in ["", "[]", '{"id": 1}', "\x00\xff", '{"id": "a", "title": "t", "dataset": "digits", '
                 '"max_epochs": "x", "max_params": 1, "deadline": 1, "created": 1}']:
        (tmp_path / cr.CHALLENGE_FILE).write_text(text, errors="surrogateescape")
        assert cr.current_challenge(tmp_path) is None


def test_nicknames_are_unique_plain_text_and_limited(tmp_path):
    c = _challenge()
    assert cr.claim_nickname(tmp_path, c, "  Ada   L ", "s1") == "Ada L"
    assert cr.claim_nickname(tmp_path, c, "ada l", "s1") == "Ada L"  # the same session keeps it
    with pytest.raises(ConfigError, match="taken"):
        cr.claim_nickname(tmp_path, c, "ADA L", "s2")
    assert cr.claim_nickname(tmp_path, c, "<b>bob</b>", "s2") == "<b>bob</b>"  # shown as plain text
    for bad in ["", "   ", "x" * (cr.MAX_NICKNAME + 1), "a\u202eb", "nul\x00"]:
        with pytest.raises(ConfigError):
            cr.claim_nickname(tmp_path, c, bad, "s3")


def _claim(args):
    root, challenge, owner = args
    try:
        cr.claim_nickname(root, challenge, "Grace", owner)
        return owner
    except ConfigError:
        return None


def test_two_sessions_racing_for_a_nickname_one_wins(tmp_path):
    c = _challenge()
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        winners = [w for w in pool.map(_claim, [(tmp_path, c, f"s{i}") for i in range(8)]) if w]
    assert len(winners) == 1


def test_submissions_follow_the_rules(tmp_path):
    c = _challenge()
    cr.check_submission(c, params=19_000, dataset="digits", epochs=5)
    for kw, text in [({"params": 20_001}, "over the budget"), ({"dataset": "mnist5k"}, "trains on digits"),
                     ({"epochs": 6}, "6 epochs")]:
        args = dict(params=1_000, dataset="digits", epochs=1)
        args.update(kw)
        with pytest.raises(ConfigError, match=text):
            cr.check_submission(c, **args)
    with pytest.raises(ConfigError, match="deadline"):
        cr.check_submission(c, 1_000, "digits", 1, now=c.deadline + 1)


def test_leaderboard_best_run_per_nickname_by_accuracy_and_by_score(tmp_path):
    c = _challenge()
    for nick, run in [("ada", "r1"), ("bob", "r2"), ("ada", "r3"), ("cy", "r4")]:
        cr.record_submission(tmp_path, c, nick, "s", tmp_path / run)
    rec = lambda acc, params, status="completed": SimpleNamespace(best_val_acc=acc, params=params,  # noqa: E731
                                                                  status=status)
    records = {"r1": rec(0.90, 10_000), "r2": rec(0.95, 19_000), "r3": rec(0.93, 5_000), "r4": rec(None, 8_000,
                                                                                                   "running")}
    by_acc = cr.leaderboard(cr.submissions(tmp_path, c), records)
    assert list(by_acc["Nickname"]) == ["bob", "ada", "cy"] and list(by_acc["Rank"]) == [1, 2, 3]
    assert by_acc.set_index("Nickname").loc["ada", "Run"] == "r3" and by_acc.set_index("Nickname").loc["ada", "Runs"] == 2
    by_score = cr.leaderboard(cr.submissions(tmp_path, c), records, by="score")
    assert list(by_score["Nickname"])[:2] == ["ada", "bob"]  # 0.93 / 0.05 = 18.6 beats 0.95 / 0.19 = 5.0
    assert by_score.iloc[0]["Score"] == pytest.approx(0.93 / 0.05)


def test_csv_export_makes_formulas_inert(tmp_path):
    c = _challenge()
    cr.record_submission(tmp_path, c, "=HYPERLINK(\"http://x\")", "s", tmp_path / "r1")
    text = cr.leaderboard_csv(cr.leaderboard(cr.submissions(tmp_path, c), {}))
    assert "'=HYPERLINK" in text


def test_submission_limit_per_nickname(tmp_path, monkeypatch):
    monkeypatch.setattr(cr, "MAX_SUBMISSIONS", 2)
    c = _challenge()
    cr.record_submission(tmp_path, c, "ada", "s", tmp_path / "r1")
    cr.record_submission(tmp_path, c, "ada", "s", tmp_path / "r2")
    with pytest.raises(ConfigError, match="most allowed"):
        cr.record_submission(tmp_path, c, "ada", "s", tmp_path / "r3")
