"""Cutting text to a limit: at a character boundary, with a visible marker, never over the limit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ecr_pipeline.notify.render.fit import MARKER, fit, fit_lines, safe_cut, units
from ecr_pipeline.notify.render.slack import escape

FAMILY = "👨\u200d👩\u200d👧\u200d👦"  # one emoji made of four joined by zero-width joiners
THUMBS_UP_DARK = "👍🏿"
KOREAN = "커밋 메시지는 한국어로 작성되었습니다"
DECOMPOSED_HANGUL = "\u1112\u1161\u11ab"  # 한 written as three jamo


def test_text_within_the_limit_is_returned_unchanged() -> None:
    assert fit("Add login page", 14) == "Add login page"


def test_long_text_is_cut_with_a_visible_marker() -> None:
    assert fit("Add login page", 8) == "Add log" + MARKER


def test_emoji_outside_the_basic_plane_count_two_units() -> None:
    assert units("a😀") == 3


def test_cut_never_splits_a_zero_width_joiner_sequence() -> None:
    text = "x" * 5 + FAMILY
    for limit in range(6, units(text)):
        result = fit(text, limit)
        assert result in ("x" * 5 + MARKER, text)


def test_cut_keeps_an_emoji_modifier_with_its_emoji() -> None:
    assert fit("ab" + THUMBS_UP_DARK + "cd", 5) == "ab" + MARKER


def test_cut_never_separates_the_two_halves_of_a_flag() -> None:
    flags = "🇰🇷🇯🇵"
    assert safe_cut(flags, 3) == 2
    assert safe_cut(flags, 1) == 0


def test_cut_keeps_hangul_jamo_together() -> None:
    assert fit("a" + DECOMPOSED_HANGUL + "b", 4) == "a" + MARKER


def test_korean_text_is_cut_between_syllables() -> None:
    result = fit(KOREAN, 10)
    assert result.endswith(MARKER)
    assert KOREAN.startswith(result[: -len(MARKER)].rstrip())
    assert units(result) <= 10


def test_escaped_text_is_never_cut_inside_an_entity() -> None:
    result = fit("a<b>c" * 10, 12, escape=escape)
    assert units(result) <= 12
    assert "&" not in result.replace("&lt;", "").replace("&gt;", "").replace("&amp;", "")


def test_lines_that_do_not_fit_are_counted() -> None:
    lines = [f"line {number}" for number in range(100)]
    result = fit_lines(lines, 60)
    assert result.startswith("line 0\nline 1\n")
    assert result.endswith("more")
    assert units(result) <= 60
    kept = result.count("line ")
    assert f"… and {100 - kept} more" in result


def test_a_first_line_longer_than_the_limit_is_cut_rather_than_dropped() -> None:
    result = fit_lines(["x" * 500, "y" * 50], 100)
    assert result.startswith("xxx")
    assert result.endswith("… and 1 more")
    assert units(result) <= 100


@given(st.text(), st.integers(min_value=1, max_value=400))
def test_fitted_text_never_exceeds_the_limit_and_is_a_prefix_of_the_original(text: str, limit: int) -> None:
    result = fit(text, limit)
    assert units(result) <= limit
    if result != text:
        assert result.endswith(MARKER)
        assert text.startswith(result[: -len(MARKER)])


@given(st.text(alphabet=st.sampled_from(["a", "<", "&", ">", "한", "😀", "\u0301", "\u200d"])), st.integers(1, 200))
def test_escaped_fitted_text_never_exceeds_the_limit(text: str, limit: int) -> None:
    assert units(fit(text, limit, escape=escape)) <= limit


@given(st.lists(st.text(max_size=300), max_size=40), st.integers(min_value=20, max_value=3000))
def test_fitted_lines_never_exceed_the_limit(lines: list[str], limit: int) -> None:
    assert units(fit_lines(lines, limit)) <= limit
