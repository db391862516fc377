"""Spec <-> URL codec for shareable links: compact JSON -> zlib -> base64url (no padding).

A teacher sends `https://host/?net=<token>` and the app opens the same network. The token is
short enough for a URL (VGG-16 is about 300 characters) and is decoded defensively: a link comes
from outside, so every failure (wrong alphabet, bad base64, bad zlib, a zip bomb, invalid JSON,
an invalid spec) raises SpecError with a sentence for the user, never anything else.

    >>> from explorer import load_preset
    >>> spec = load_preset("lenet5")
    >>> decode_spec(encode_spec(spec)) == spec
    True
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from urllib.parse import urlencode

from explorer.core.spec import MAX_SPEC_BYTES, NetworkSpec, SpecError

QUERY_KEY = "net"            # the query parameter that carries the spec
MAX_TOKEN_CHARS = 16_000     # longer links break in some browsers and chat tools
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]*")


def encode_spec(spec: NetworkSpec) -> str:
    """The URL-safe token for a spec (deterministic: the same spec gives the same token)."""
    text = json.dumps(spec.to_dict(), separators=(",", ":"), ensure_ascii=False)
    packed = zlib.compress(text.encode("utf-8"), 9)
    token = base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")
    if len(token) > MAX_TOKEN_CHARS:
        raise SpecError(f"this network is too large to share as a link ({len(token):,} characters; "
                        f"the limit is {MAX_TOKEN_CHARS:,}); download the spec JSON and share the file")
    return token


def decode_spec(token: str) -> NetworkSpec:
    """The spec a token encodes; SpecError (with what went wrong) for anything malformed."""
    if not isinstance(token, str):
        raise SpecError("the link's network parameter is not text")
    token = token.strip()
    if not token:
        raise SpecError("the link's network parameter is empty")
    if len(token) > MAX_TOKEN_CHARS:
        raise SpecError(f"the link's network is {len(token):,} characters long; the limit is "
                        f"{MAX_TOKEN_CHARS:,}. Ask for the spec JSON file instead")
    if not _TOKEN_RE.fullmatch(token):
        raise SpecError("the link's network parameter has characters a shared link never contains; "
                        "it was probably cut or altered when it was copied. Copy the whole link again")
    try:
        packed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise SpecError("the link's network parameter is cut short or altered (not valid base64); "
                        "copy the whole link again") from None
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(packed, MAX_SPEC_BYTES + 1)  # bounded: no zip bombs
    except zlib.error:
        raise SpecError("the link's network parameter is damaged (it does not decompress); "
                        "copy the whole link again") from None
    if len(raw) > MAX_SPEC_BYTES or inflater.unconsumed_tail:
        raise SpecError(f"the link's network is larger than the limit of {MAX_SPEC_BYTES:,} bytes")
    if not inflater.eof:
        raise SpecError("the link's network parameter is cut short; copy the whole link again")
    return NetworkSpec.from_json(raw)


def share_query(spec: NetworkSpec) -> str:
    """The query string (without '?') that opens this spec."""
    return urlencode({QUERY_KEY: encode_spec(spec)})


def share_url(base_url: str, spec: NetworkSpec) -> str:
    """base_url (the app's address, any query dropped) plus the query that opens this spec."""
    base = base_url.split("?", 1)[0].split("#", 1)[0]
    return f"{base}?{share_query(spec)}"


__all__ = ["QUERY_KEY", "MAX_TOKEN_CHARS", "encode_spec", "decode_spec", "share_query", "share_url"]
