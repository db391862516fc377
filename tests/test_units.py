"""explorer.units: the one way counts, bytes, MACs, times and percentages are printed."""

from __future__ import annotations

import math

import pytest

from explorer.units import (format_bytes, format_bytes_short, format_count, format_macs, format_percent,
                            format_seconds, format_share, format_short, format_value)


def test_format_macs():
    assert format_macs(15_470_264_320) == "15.47 GMACs"
    assert format_macs(416_520) == "416.52 KMACs"
    assert format_macs(2_500_000) == "2.50 MMACs"
    assert format_macs(840) == "840 MACs"
    assert format_macs(0) == "0 MACs"


def test_counts_exact_and_compact_si():
    assert format_count(138_357_544) == "138,357,544"
    assert format_short(138_357_544) == "138M"          # the Build page's Parameters card
    assert format_short(3_211_264) == "3.2M"            # cs231n: 224*224*64 = 3.2M
    assert format_short(1_728) == "1.7K"
    assert format_short(15_470_264_320) == "15.5G"
    assert format_short(840) == "840"


def test_bytes_binary():
    assert format_bytes(1536) == "1.50 KiB"
    assert format_bytes(10 * 2**20) == "10.00 MiB"
    assert format_bytes(100) == "100 B"
    assert format_bytes_short(1_040_979_968) == "993 MiB"
    assert format_bytes_short(3_670_000_000) == "3.42 GiB"
    assert format_bytes_short(1000) == "1000 B"         # under 1 KiB: bytes, not "0.98 KiB"


@pytest.mark.parametrize("value", [0, 1, 999, 1000, 99_999, 123_456_789, 987_654_321_012, 2**40])
def test_compact_forms_fit_a_card(value):
    """Headline cards never cut a number: at most three significant figures, a unit after."""
    for text in (format_short(value), format_bytes_short(value)):
        digits = sum(ch.isdigit() for ch in text.split()[0])
        assert len(text) <= 9 and digits <= 4, text


def test_percent_share_and_seconds():
    assert format_percent(0.9713) == "97.1%"
    assert format_percent(0.71592, 2) == "71.59%"
    assert format_percent(None) == "-" and format_percent(math.nan) == "-"
    assert format_share(1, 3) == "33.3%" and format_share(5, 0) == "0%"
    assert format_seconds(7.25) == "7.2 s"
    assert format_seconds(42.4) == "42 s"
    assert format_seconds(185) == "3 min 05 s"
    assert format_seconds(3725) == "1 h 02 min"
    assert format_seconds(None) == "-"


def test_setting_values_in_three_significant_figures():
    assert format_value(0.07572375773085209) == "0.0757"       # a searched learning rate
    assert format_value(0.00010160177584759024) == "0.000102"  # a searched weight decay
    assert format_value(4.7393349213710587e-05) == "4.74e-05"
    assert [format_value(v) for v in (1e-05, 0.0005, 0.1, 1.0, 0.0, 64)] == ["1e-05", "0.0005", "0.1", "1", "0", "64"]
