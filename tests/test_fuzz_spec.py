"""Every loader of visitor input (spec JSON, share links, block objects, the CLI's --spec and
flags) raises only the user-error base class, or succeeds; a spec the loader accepts analyses or
raises SpecError (BudgetError included). Hypothesis property tests with visible case counts, plus
a committed corpus of hostile inputs (tests/corpus/specs/) that every loader refuses cleanly.

Case counts per loader are the module constants below (the CI profile in conftest.py is
derandomised, so CI runs the same cases every time)."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import os
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from explorer import load_preset
from explorer.core.analysis import analyze
from explorer.core.budget import check_spec
from explorer.cli import main
from explorer.errors import SpecError, UserError
from explorer.core.registry import block_types, get_block, validate_block_dict
from explorer.core.share import decode_spec, encode_spec
from explorer.core.spec import MAX_SPEC_BYTES, SPEC_FORMAT, NetworkSpec, spec_from_dict, spec_from_json

FUZZ_CASES = 3000        # per loader on flat input: spec_from_json (text, bytes), decode_spec (tokens)
FUZZ_JSON_CASES = 1000   # per loader on generated JSON structures (costlier to generate): spec_from_json and
                         # spec_from_dict, decode_spec on tokens of random JSON, validate_block_dict
FUZZ_ANALYSE_CASES = 300  # accepted random specs that are then analysed
FUZZ_CLI_CASES = 300     # `python -m explorer analyze` on temp files and random flags (main() in-process)
CORPUS = Path(__file__).parent / "corpus" / "specs"


def fuzz(cases: int) -> settings:
    """The loaded profile (derandomised under CI) with an explicit case count."""
    return settings(max_examples=cases, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def pack(raw: bytes) -> str:
    """A share token for arbitrary bytes (as encode_spec makes one for a spec's JSON)."""
    return base64.urlsafe_b64encode(zlib.compress(raw)).decode("ascii").rstrip("=")


def refused_or_spec(load, *args) -> NetworkSpec | None:
    """Run a loader: its spec, or None when it refused with a UserError (anything else fails the test)."""
    try:
        return load(*args)
    except UserError as e:
        assert str(e), "a user error always says something"
        return None


# --- strategies: arbitrary JSON, and JSON shaped like a spec ---------------------------------------
NUMBERS = (st.integers() | st.integers(min_value=-2, max_value=70) | st.just(10**40)
           | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.5, 1e-5, 2.0, -0.0]))
TEXT = st.text(max_size=12) | st.sampled_from(["same", "conv", "\ud800", "\x00", "\ufeff", SPEC_FORMAT])
LEAVES = st.none() | st.booleans() | NUMBERS | TEXT
JSON = st.recursive(LEAVES, lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(TEXT, children, max_size=4), max_leaves=12)


@st.composite
def block_dicts(draw):
    """A block object: a real type, real field names (and a few others), plausible or hostile values."""
    type_name = draw(st.sampled_from(block_types()) | TEXT | JSON)
    names = [f.name for f in get_block(type_name).fields] if type_name in block_types() else []
    keys = draw(st.lists(st.sampled_from(names + ["repeat", "type", "kernal"]) | TEXT, max_size=4))
    block = {"type": type_name}
    for key in keys:
        block[key] = draw(NUMBERS | st.sampled_from(["same", True, False, [8, 4], [], None]) | JSON)
    return block


@st.composite
def spec_dicts(draw):
    data = {"blocks": draw(st.lists(block_dicts(), max_size=6))}
    for key, values in (("input", st.sampled_from([[3, 16, 16], [1, 8, 8], [12], [3, 0, 8], [True, 8, 8]]) | JSON),
                        ("num_classes", NUMBERS | JSON), ("name", TEXT | JSON),
                        ("format", st.just(SPEC_FORMAT) | JSON), ("description", TEXT | JSON)):
        if draw(st.booleans()):
            data[key] = draw(values)
    if draw(st.integers(0, 9)) == 0:
        data[draw(TEXT)] = draw(JSON)
    return data


def dumps(data) -> str:
    return json.dumps(data, allow_nan=True)  # NaN/Infinity literals too: json.loads accepts them


# --- spec_from_json / spec_from_dict ------------------------------------------------------------
@fuzz(FUZZ_CASES)
@given(st.text(max_size=300) | st.from_regex(r"[\[\]{}\"0-9eE.,:\- a-z]{0,300}", fullmatch=True))
def test_spec_from_json_on_arbitrary_text(text):
    refused_or_spec(spec_from_json, text)


@fuzz(FUZZ_CASES)
@given(st.binary(max_size=300))
def test_spec_from_json_on_arbitrary_bytes(data):
    refused_or_spec(spec_from_json, data)


@fuzz(FUZZ_JSON_CASES)
@given(spec_dicts() | JSON)
def test_spec_from_json_and_from_dict_on_json_shaped_input(data):
    from_text = refused_or_spec(spec_from_json, dumps(data))
    from_dict = refused_or_spec(spec_from_dict, data)
    if from_text is not None:  # NaN/Infinity and numbers too long for a spec fail only as text
        assert from_dict == from_text
        assert spec_from_json(from_text.to_json()) == from_text  # what it accepts, it writes back


@fuzz(FUZZ_JSON_CASES)
@given(st.integers(0, 600), block_dicts() | JSON)
def test_validate_block_dict(index, data):
    refused_or_spec(validate_block_dict, index, data)


@fuzz(FUZZ_ANALYSE_CASES)
@given(spec_dicts())
def test_an_accepted_spec_analyses_or_raises_spec_error(data):
    spec = refused_or_spec(spec_from_dict, data)
    if spec is None:
        return
    try:
        a = analyze(spec)
    except SpecError:  # shapes that do not fit, or over the budget (BudgetError)
        return
    assert all(math.isfinite(r.params) and r.params >= 0 for r in a.rows)
    json.dumps(a.to_dict(), allow_nan=False)  # exports hold no NaN
    assert decode_spec(encode_spec(spec)) == spec  # and it can be shared


# --- share links --------------------------------------------------------------------------------
TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@fuzz(FUZZ_CASES)
@given(st.text(TOKEN_CHARS, max_size=120) | st.text(max_size=60) | st.sampled_from(["eJ", "eJw", "eNo", "x"]))
def test_decode_spec_on_arbitrary_tokens(token):
    refused_or_spec(decode_spec, token)


@fuzz(FUZZ_JSON_CASES)
@given(spec_dicts() | JSON | st.binary(max_size=100))
def test_decode_spec_on_tokens_made_from_random_json(data):
    raw = data if isinstance(data, bytes) else dumps(data).encode("utf-8", "surrogatepass")
    token = pack(raw)
    spec = refused_or_spec(decode_spec, token)
    if spec is not None:
        refused_or_spec(check_spec, spec)  # what the Build page does next with a link
    refused_or_spec(decode_spec, token[:len(token) // 2])  # a link cut when it was copied


def test_decode_spec_on_non_strings():
    for value in (None, 5, b"eJw", ["a"], {"net": "x"}):
        with pytest.raises(SpecError):
            decode_spec(value)


# --- the command line ---------------------------------------------------------------------------
def run_cli(argv: list[str]) -> tuple[int, str]:
    """main() in-process: (exit status, stderr). argparse's own refusals exit 2 as well."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse: a bad flag value
            code = e.code
    return code, err.getvalue()


@fuzz(FUZZ_CLI_CASES)
@given(spec_dicts() | JSON | st.binary(max_size=200),
       st.lists(st.sampled_from(["--input", "--batch", "--num-classes", "--dtype", "--format"])
                .flatmap(lambda flag: st.tuples(st.just(flag), st.sampled_from(
                    ["3,16,16", "0", "-1", "1,2", "9" * 5000, "nan", "x", "", "1e9", "3,8192,8192", "json", "2"])
                    | st.text(max_size=8))), max_size=2))
def test_cli_analyze_spec_files_and_flags(data, flags):
    raw = data if isinstance(data, bytes) else dumps(data).encode("utf-8", "surrogatepass")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.json"
        path.write_bytes(raw)
        argv = ["analyze", "--spec", str(path)] + [part for pair in flags for part in pair]
        code, err = run_cli(argv)
    assert code in (0, 2), err
    assert "Traceback" not in err


# --- the committed corpus of hostile inputs ---------------------------------------------------------
CORPUS_FILES = sorted(CORPUS.iterdir())


def load_like_the_app(data: bytes) -> NetworkSpec:
    """An import or a link: parse, validate, then the budget (before anything is analysed)."""
    spec = spec_from_json(data)
    check_spec(spec)
    return spec


def test_the_corpus_is_small_and_varied():
    assert len(CORPUS_FILES) >= 40
    assert sum(p.stat().st_size for p in CORPUS_FILES) < 50_000  # bytes: big inputs are made at test time


@pytest.mark.parametrize("path", [p for p in CORPUS_FILES if p.suffix == ".json"], ids=lambda p: p.name)
def test_every_loader_refuses_each_corpus_spec(path):
    data = path.read_bytes()
    with pytest.raises(UserError):
        load_like_the_app(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        with pytest.raises(UserError):
            load_like_the_app(text)  # the same input as text (a pasted spec)
    with pytest.raises(UserError):
        spec = decode_spec(pack(data))
        check_spec(spec)
    code, err = run_cli(["analyze", "--spec", str(path)])
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err


@pytest.mark.parametrize("path", [p for p in CORPUS_FILES if p.suffix == ".token"], ids=lambda p: p.name)
def test_every_corpus_link_is_refused(path):
    with pytest.raises(UserError):
        check_spec(decode_spec(path.read_text()))


def test_big_files_made_at_test_time_are_refused(tmp_path):
    for name, data in (("ten_mb.json", b'{"name": "' + b"a" * 10_000_000 + b'"}'),
                       ("ten_mb_nesting.json", b"[" * 5_000_000 + b"]" * 5_000_000),
                       ("just_over.json", b" " * MAX_SPEC_BYTES + b"{}")):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(SpecError, match="limit"):
            spec_from_json(data)
        with pytest.raises(SpecError, match="limit"):
            spec_from_json(data.decode())
        code, err = run_cli(["analyze", "--spec", str(path)])
        assert code == 2 and "limit" in err


def test_unreadable_spec_paths_exit_2(tmp_path):
    assert run_cli(["analyze", "--spec", str(tmp_path)])[0] == 2  # a folder
    assert run_cli(["analyze", "--spec", str(tmp_path / "missing.json")])[0] == 2
    if hasattr(os, "mkfifo") and os.getuid() != 0:
        locked = tmp_path / "locked.json"
        locked.write_text("{}")
        locked.chmod(0)
        assert run_cli(["analyze", "--spec", str(locked)])[0] == 2


def test_a_utf8_bom_is_accepted_and_utf16_is_named():
    text = load_preset("lenet5").to_json()
    assert spec_from_json(b"\xef\xbb\xbf" + text.encode()) == load_preset("lenet5")
    assert spec_from_json("\ufeff" + text) == load_preset("lenet5")
    with pytest.raises(SpecError, match="UTF-16"):
        spec_from_json(text.encode("utf-16"))


@pytest.mark.parametrize("field,value", [("p", math.nan), ("p", math.inf), ("p", 10**400), ("p", True),
                                         ("p", "0.5"), ("p", [0.5])])
def test_non_finite_and_wrong_typed_floats_are_refused_from_python_too(field, value):
    with pytest.raises(SpecError, match=field):
        spec_from_dict({"blocks": [{"type": "dropout", field: value}]})
    for type_name, name in (("batchnorm", "eps"), ("lrn", "k"), ("noise", "std"), ("leakyrelu", "negative_slope")):
        with pytest.raises(SpecError, match=name):
            spec_from_dict({"blocks": [{"type": type_name, name: math.nan}]})


def test_the_48_character_link_from_the_issue_is_refused():
    token = pack(b'{"blocks":[{"type":[1]}]}')  # TypeError (unhashable list) before the fix
    assert len(token) < 60
    with pytest.raises(SpecError, match="unknown block type"):
        decode_spec(token)


def test_the_build_page_shows_a_bad_link_and_opens_the_default():
    from streamlit.testing.v1 import AppTest

    from ui import state

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60)
    at.query_params.update(net=pack(b'{"blocks":[{"type":[1]}]}'))
    at = at.run()
    assert not at.exception
    assert at.session_state[state.SPEC] == load_preset(state.DEFAULT_PRESET)
    assert any("Could not open the shared link" in e.value for e in at.error)
