"""explorer.access: the owner's and the teacher's codes are compared one way, and an unset or
empty code never opens anything."""

import pytest

from explorer.access import code_matches
from explorer.classroom.challenge import TEACHER_CODE_ENV, teacher_code_ok
from explorer.training.jobs import OWNER_CODE_ENV, owner_code_ok


@pytest.mark.parametrize("check, env", [(owner_code_ok, OWNER_CODE_ENV), (teacher_code_ok, TEACHER_CODE_ENV)])
def test_codes_open_only_with_the_right_non_empty_code(monkeypatch, check, env):
    monkeypatch.delenv(env, raising=False)
    assert not check("") and not check(None) and not check("anything")
    monkeypatch.setenv(env, "")
    assert not check("") and not check(None)
    monkeypatch.setenv(env, "s3cret-ü")
    assert check("s3cret-ü")
    assert not check("s3cret") and not check("s3cret-ü ") and not check(None) and not check(123)


def test_code_matches_reads_the_variable_at_each_call(monkeypatch):
    monkeypatch.setenv("CNN_EXPLORER_TEST_CODE", "a")
    assert code_matches("CNN_EXPLORER_TEST_CODE", "a")
    monkeypatch.setenv("CNN_EXPLORER_TEST_CODE", "b")
    assert not code_matches("CNN_EXPLORER_TEST_CODE", "a") and code_matches("CNN_EXPLORER_TEST_CODE", "b")
