"""User strings as data: how a visitor's text becomes a file name, an identifier, a source-code
literal, or plain text inside Markdown and chart labels.

Owns every rule for putting a string that a person typed (a network's name or description, a run
name, an upload's file name, a nickname) somewhere that would otherwise interpret it. Any string
that JSON allows (quotes, backslashes, NUL, lone surrogates, right-to-left marks, Markdown, HTML)
goes through one of these functions and comes out inert. Never imports the project.

    >>> slug("../../etc/passwd")
    'etc-passwd'
    >>> eval(python_literal('a"b\\\\c')) == 'a"b\\\\c'
    True
    >>> markdown_plain("**x**")
    '\\\\*\\\\*x\\\\*\\\\*'
"""

from __future__ import annotations

import html
import keyword
import re
import unicodedata

# CommonMark lets a backslash escape any ASCII punctuation; Streamlit adds `:colour[...]`,
# `:material/icon:` directives and `$...$` LaTeX, which the same escapes switch off.
_MD_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_SLUG_DROP = re.compile(r"[^A-Za-z0-9_-]+")


def printable(text: str) -> str:
    """Control, format (bidi overrides), surrogate and unassigned characters -> '?'; newlines -> space."""
    out = []
    for ch in str(text):
        if ch in "\r\n\t":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            out.append("?")
        else:
            out.append(ch)
    return "".join(out)


def slug(name: str, default: str = "network", max_len: int = 40) -> str:
    """An ASCII file-name part: letters, digits, '-' and '_', never starting with '-' or '.'."""
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
    text = _SLUG_DROP.sub("-", text).strip("-_")[:max_len].strip("-_")
    return text or default


def class_name(name: str) -> str:
    """A Python class name from a network name: CamelCase ASCII words, never a keyword."""
    words = re.findall(r"[A-Za-z0-9]+", str(name)) or ["Network"]
    result = "".join(w[:1].upper() + w[1:] for w in words)[:60]
    if result[0].isdigit() or keyword.iskeyword(result):
        result = "Net" + result
    return result


def python_literal(text: str) -> str:
    """A Python string literal that evaluates to `text` exactly (repr escapes quotes, backslashes,
    control characters and lone surrogates; the result is valid source in a UTF-8 file)."""
    literal = repr(str(text))
    # repr keeps printable non-ASCII as is; escape the ones a source file or an editor mangles.
    return "".join(ch if ch.isascii() or ch.isprintable() else ascii(ch)[1:-1] for ch in literal)


def docstring_text(text: str) -> str:
    """Text for inside a triple-quoted (non-raw) docstring: ASCII, with every escape spelled out,
    so the docstring reads back as `text` and no quote or backslash can end it early."""
    escaped = str(text).encode("unicode_escape", "backslashreplace").decode("ascii")
    return escaped.replace('"', '\\"')


def markdown_plain(text: str, max_len: int | None = None) -> str:
    """`text` shown literally by a Markdown renderer (st.markdown, st.info, st.caption, ...):
    one line, every ASCII punctuation mark escaped, invisible characters made visible."""
    text = printable(text)
    if max_len is not None and len(text) > max_len:
        text = text[: max_len - 1] + "…"
    return _MD_PUNCTUATION.sub(r"\\\1", text)


def html_plain(text: str, max_len: int | None = None) -> str:
    """`text` for Plotly labels, legends and hover templates, which render a subset of HTML (links
    included), fill in %{...} template fields and typeset $...$ as LaTeX: all three made inert."""
    text = printable(text)
    if max_len is not None and len(text) > max_len:
        text = text[: max_len - 1] + "…"
    return html.escape(text, quote=True).replace("%", "&#37;").replace("$", "&#36;")


def csv_cell(text: str) -> str:
    """A cell for a CSV file that spreadsheets open: a leading = + - @ (or tab/CR) would start a
    formula (CSV injection), so such text gets a leading apostrophe, as OWASP advises."""
    text = str(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def frame_csv(frame) -> str:
    """A pandas DataFrame as CSV text with every text cell passed through csv_cell."""
    return frame.map(lambda v: csv_cell(v) if isinstance(v, str) else v).to_csv(index=False)


__all__ = ["frame_csv", "csv_cell", "printable", "slug", "class_name", "python_literal", "docstring_text", "markdown_plain", "html_plain"]
