"""The share-link codec: round trips every preset, and turns every malformed link into a
SpecError with a message (never another exception)."""

from __future__ import annotations

import base64
import json
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from explorer import load_preset, preset_names
from explorer.core.share import MAX_TOKEN_CHARS, QUERY_KEY, decode_spec, encode_spec, share_query, share_url
from explorer.core.spec import MAX_SPEC_BYTES, BlockSpec, NetworkSpec, SpecError


def pack(raw: bytes) -> str:
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")


@pytest.mark.parametrize("name", preset_names())
def test_round_trip_every_preset(name):
    spec = load_preset(name)
    token = encode_spec(spec)
    assert decode_spec(token) == spec
    assert len(token) < 2000  # fits comfortably in a URL
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_edited_spec_round_trips_and_is_deterministic():
    spec = load_preset("lenet5")
    spec = spec.with_blocks(spec.blocks + (BlockSpec.make("dropout", p=0.3), BlockSpec.make("relu", repeat=2)))
    spec = spec.with_input((3, 64, 48))
    assert decode_spec(encode_spec(spec)) == spec
    assert encode_spec(spec) == encode_spec(NetworkSpec.from_json(spec.to_json()))


def test_unicode_name_round_trips():
    spec = NetworkSpec(name="réseau ✓", blocks=(BlockSpec.make("flatten"),))
    assert decode_spec(encode_spec(spec)).name == "réseau ✓"


def test_share_url_replaces_any_query():
    spec = load_preset("twoconv")
    url = share_url("http://localhost:8501/?net=old#x", spec)
    assert url == f"http://localhost:8501/?{QUERY_KEY}={encode_spec(spec)}"
    assert share_query(spec).startswith(f"{QUERY_KEY}=")


def test_padding_may_be_present_or_not():
    token = encode_spec(load_preset("lenet5"))
    assert decode_spec(token + "=" * (-len(token) % 4)) == load_preset("lenet5")


@pytest.mark.parametrize("token, message", [
    ("", "empty"),
    ("   ", "empty"),
    ("abc$def", "characters"),
    ("a b", "characters"),
    ("A", "base64"),                                   # one character cannot be base64
    ("AAAA", "does not decompress"),                   # valid base64, not zlib
    (pack(b"{not json")[:-6], "cut short"),            # truncated stream
    (pack(b"{not json"), "not valid JSON"),
    (pack(b"[1, 2]"), "JSON object"),
    (pack(json.dumps({"blocks": [{"type": "conv", "kernel": 0}]}).encode()), "kernel"),
    (pack(b"\xff\xfe\x00"), "UTF-8"),
    ("A" * (MAX_TOKEN_CHARS + 1), "limit"),
])
def test_malformed_tokens_raise_spec_error(token, message):
    with pytest.raises(SpecError, match=message):
        decode_spec(token)


def test_zip_bomb_is_refused_without_inflating_it():
    bomb = pack(b" " * (4 * MAX_SPEC_BYTES))  # a short token that inflates to 1 MB
    assert len(bomb) < 2_000
    with pytest.raises(SpecError, match="larger than the limit"):
        decode_spec(bomb)


def test_non_string_is_refused():
    with pytest.raises(SpecError):
        decode_spec(None)  # type: ignore[arg-type]


def test_a_spec_too_large_for_a_link():
    spec = NetworkSpec(blocks=tuple(BlockSpec.make("conv", out_channels=i + 1, kernel=1)
                                    for i in range(500)), description="".join(chr(0x4E00 + i) for i in range(20000)))
    with pytest.raises(SpecError, match="too large to share"):
        encode_spec(spec)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.text(alphabet="ABCDEFabcdef0123456789-_", max_size=300)))
def test_any_text_gives_a_spec_or_a_spec_error(token):
    try:
        assert isinstance(decode_spec(token), NetworkSpec)
    except SpecError as e:
        assert str(e)
