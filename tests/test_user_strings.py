"""User strings are data (issue 9, deliverable 3): every name that JSON allows exports to PyTorch
source that compiles, runs and keeps the name; file names and page text are inert."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core.export import to_pytorch_source
from explorer.core.spec import NetworkSpec, SpecError
from explorer.text import class_name, docstring_text, html_plain, markdown_plain, python_literal, slug

FUZZ_CASES = 2000  # hypothesis examples per property below

HOSTILE_NAMES = [
    'a"""b', "'''", '"', "\\", "x\\", "\\N{BULLET}", "\x00", "nul\x00in", "\ud800", "\udfff tail",
    "\u202egnp.exe", "line\nbreak", "tab\there", "a\r\nb", "é à ü", "日本語ネット", "🙂 emoji",
    "'); import os; os.system('echo pwned') #", '"""\nimport os\n"""', "{name}", "%s%s", "$x$",
    "**bold** [link](http://example.com)", "<script>alert(1)</script>", ":red[alert]", "   spaced   ",
    "class", "None", "123", "-", "..", "../../etc/passwd", "a" * 100,
]
# Any string JSON can carry (json.loads of "\ud800" gives a lone surrogate), 1-100 characters,
# that the spec loader keeps (it strips surrounding white space and refuses blank names).
json_strings = st.text(st.characters(codec=None, exclude_categories=()), min_size=1, max_size=100)


def _spec(name: str) -> NetworkSpec:
    """A small network named `name`, built directly: the loader refuses control characters and
    lone surrogates in names (a SpecError), but the exporter must cope with any string at all."""
    base = NetworkSpec.from_dict({"input": [1, 8, 8], "num_classes": 3,
                                  "blocks": [{"type": "conv", "out_channels": 2, "kernel": 3, "padding": 1},
                                             {"type": "relu"}, {"type": "flatten"},
                                             {"type": "linear", "out_features": 3}]})
    return dataclasses.replace(base, name=name)


def _run_source(source: str) -> dict:
    namespace: dict = {"__name__": "exported"}
    exec(compile(source, "<exported>", "exec"), namespace)  # our own generated code, not a visitor's
    return namespace


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_export_compile_run_and_keep_the_name(name):
    spec = _spec(name)
    source = to_pytorch_source(spec)
    ns = _run_source(source)
    assert ns["NETWORK_NAME"] == spec.name
    model_cls = next(v for k, v in ns.items() if isinstance(v, type) and k == class_name(spec.name))
    model = model_cls()
    import torch

    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 3)
    assert ns["__doc__"].startswith(spec.name + ":")
    # the file is plain UTF-8: it can be written and read back as text
    assert source.encode("utf-8").decode("utf-8") == source


@settings(max_examples=FUZZ_CASES)
@given(json_strings)
def test_any_json_name_exports_to_source_that_compiles(name):
    raw = json.dumps({"name": name, "blocks": [{"type": "flatten"}, {"type": "linear", "out_features": 10}]})
    try:
        NetworkSpec.from_json(raw)  # the loader keeps the name or refuses it with a message
    except SpecError:
        pass
    spec = _spec(name)
    source = to_pytorch_source(spec)
    tree = compile(source, "<exported>", "exec", dont_inherit=True)
    assert tree is not None
    ns = _run_source(source)
    assert ns["NETWORK_NAME"] == spec.name


@settings(max_examples=FUZZ_CASES)
@given(json_strings)
def test_literals_and_docstrings_read_back_exactly(text):
    assert eval(python_literal(text)) == text
    assert eval('"""' + docstring_text(text) + '"""') == text
    assert docstring_text(text).isascii()


@settings(max_examples=FUZZ_CASES)
@given(json_strings)
def test_slugs_are_safe_file_names(text):
    s = slug(text)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}", s) or s == "network"
    assert class_name(text).isidentifier()


@settings(max_examples=FUZZ_CASES)
@given(json_strings)
def test_markdown_plain_leaves_no_active_markup(text):
    shown = markdown_plain(text)
    assert "\n" not in shown and "\r" not in shown
    # every ASCII punctuation mark is preceded by a backslash (an odd run of them)
    for m in re.finditer(r"(\\*)([!-/:-@\[-`{-~])", shown):
        assert len(m.group(1)) % 2 == 1, (text, shown)
    assert "<" not in html_plain(text) and ">" not in html_plain(text) and '"' not in html_plain(text)


def test_markdown_plain_examples():
    assert markdown_plain("**x**") == r"\*\*x\*\*"
    assert markdown_plain("[a](javascript:alert(1))") == r"\[a\]\(javascript\:alert\(1\)\)"
    assert markdown_plain("a\u202eb\x00c") == r"a\?b\?c"
    assert markdown_plain("x" * 50, max_len=10) == "x" * 9 + "…"
