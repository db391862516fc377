"""How numbers are printed: counts, bytes, MACs, times and percentages, for every page and the CLI.

Owns every rule for turning a number into text with its unit; nothing else in the project
formats a count, a size, a duration or a share by hand. Never imports the project.

Conventions (DESIGN.md, "Counting conventions"):
- bytes use binary units: 1 KiB = 2**10 bytes, 1 MiB = 2**20, 1 GiB = 2**30.
- counts (parameters, activations, images) and MACs use SI prefixes: K = 10**3, M = 10**6,
  G = 10**9 (the cs231n slides' "3.2M", torchvision's "15.47 GMACs"). FLOPs = 2 x MACs.
- exact forms, for tables, help text, captions and the CLI: every digit with thousands
  separators (format_count(138357544) -> '138,357,544'); bytes with two decimals
  (format_bytes(1536) -> '1.50 KiB'); MACs with two decimals and the unit (format_macs).
- compact forms, for headline cards (st.metric) and chart labels: at most three significant
  figures and a prefix, short enough that a card never cuts them with '…'
  (format_short(138357544) -> '138M', format_bytes_short(1040979968) -> '993 MiB'); a card
  that shows a compact form gives the exact one in its help.
- percentages: fractions in [0, 1] in, one decimal out (format_percent(0.9713) -> '97.1%');
  format_share(part, total) for a part of a whole.
- times: seconds in, the largest sensible unit out (format_seconds(185) -> '3 min 05 s').
- settings (a learning rate, a weight decay): at most three significant figures, so a searched
  value reads like a hand-picked one (format_value(0.07572375773085209) -> '0.0757').

    >>> format_count(138357544), format_short(138357544), format_macs(15470264320)
    ('138,357,544', '138M', '15.47 GMACs')
    >>> format_bytes(1536), format_bytes_short(3_670_000_000)
    ('1.50 KiB', '3.42 GiB')
    >>> format_percent(0.9713), format_share(1, 3), format_seconds(7.25), format_seconds(3725)
    ('97.1%', '33.3%', '7.2 s', '1 h 02 min')
    >>> format_value(0.07572375773085209), format_value(0.00010160177584759024), format_value(1e-05)
    ('0.0757', '0.000102', '1e-05')
"""

from __future__ import annotations

import math

SI = (("G", 1e9), ("M", 1e6), ("K", 1e3))                          # counts and MACs
BINARY = (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))    # bytes
MISSING = "-"                                                      # a value that is not known


def format_count(value: int | float) -> str:
    """Exact, with thousands separators: 138357544 -> '138,357,544'."""
    return f"{int(value):,}"


def format_short(value: int | float) -> str:
    """Compact SI (K/M/G, decimal): two or three significant figures, as the cs231n slides write
    them: 3211264 -> '3.2M', 138357544 -> '138M', 840 -> '840'."""
    value = float(value)
    for unit, scale in SI:
        if abs(value) >= scale:
            scaled = value / scale
            return f"{scaled:.1f}{unit}" if scaled < 100 else f"{scaled:.0f}{unit}"
    return f"{value:.0f}"


def _two_decimals(value: int | float, units: tuple[tuple[str, float], ...], suffix: str, base: str) -> str:
    """value in the largest of `units` it reaches with two decimals ('15.47 G' + suffix), else the
    whole number with thousands separators and the base unit ('840 MACs', '100 B')."""
    value = float(value)
    for unit, scale in units:
        if abs(value) >= scale:
            return f"{value / scale:.2f} {unit}{suffix}"
    return f"{value:,.0f} {base}"


def format_macs(macs: int | float) -> str:
    """Multiply-accumulates with a decimal unit and two decimals: 15470264320 -> '15.47 GMACs'."""
    return _two_decimals(macs, SI, "MACs", "MACs")


def format_bytes(value: int | float) -> str:
    """Binary units with two decimals: 1536 -> '1.50 KiB', 100 -> '100 B'."""
    return _two_decimals(value, BINARY, "", "B")


def format_bytes_short(value: int | float) -> str:
    """Binary units in at most three significant figures, for headline numbers:
    1_040_979_968 -> '993 MiB', 3_670_000_000 -> '3.42 GiB'."""
    value = float(value)
    for unit, scale in BINARY:
        if abs(value) >= scale:
            scaled = value / scale
            return f"{scaled:.0f} {unit}" if scaled >= 100 else f"{scaled:.3g} {unit}"
    return f"{value:.0f} B"


def format_percent(fraction: float | None, digits: int = 1) -> str:
    """A fraction in [0, 1] as a percentage: 0.9713 -> '97.1%'; None or NaN -> '-'."""
    if fraction is None or (isinstance(fraction, float) and math.isnan(fraction)):
        return MISSING
    return f"{100 * float(fraction):.{digits}f}%"


def format_share(part: int | float, total: int | float, digits: int = 1) -> str:
    """part / total as a percentage ('0%' when the total is 0): (1, 3) -> '33.3%'."""
    return format_percent(part / total, digits) if total else "0%"


def format_seconds(seconds: float | None) -> str:
    """A duration: '7.2 s' under 10 s, '42 s' under a minute, '3 min 05 s', '1 h 02 min'; None -> '-'."""
    if seconds is None:
        return MISSING
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def format_value(value: int | float, digits: int = 3) -> str:
    """A setting's number in at most `digits` significant figures, trailing zeros dropped:
    0.07572375773085209 -> '0.0757', 0.0005 -> '0.0005', 4.7393e-05 -> '4.74e-05', 64 -> '64'."""
    return f"{float(value):.{digits}g}"


__all__ = ["format_count", "format_short", "format_value", "format_macs", "format_bytes", "format_bytes_short",
           "format_percent", "format_share", "format_seconds", "MISSING"]
