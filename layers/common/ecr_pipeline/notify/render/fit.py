"""Cutting text to a length limit cleanly: at a character boundary, with a visible marker.

Lengths are counted in UTF-16 code units, the strictest count a receiver may use (an emoji
outside the Basic Multilingual Plane counts 2), so a text that fits here fits everywhere.
A cut never splits a user-perceived character: combining marks, variation selectors, emoji
modifiers, zero-width joiner sequences, flag pairs and Hangul jamo stay with their base.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable

MARKER = "…"
_ZWJ = "\u200d"


def units(text: str) -> int:
    """Length in UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _char_units(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def _extends_previous(char: str) -> bool:
    """True when `char` belongs to the same user-perceived character as the one before it."""
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")
        or char == _ZWJ
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0xE0100 <= code <= 0xE01EF
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F  # emoji tag sequences (subdivision flags)
        or 0x1160 <= code <= 0x11FF  # Hangul jamo vowels and finals join the syllable before
        or 0xD7B0 <= code <= 0xD7FF
    )


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def safe_cut(text: str, index: int) -> int:
    """The largest cut position <= index that does not split a user-perceived character."""
    index = max(0, min(index, len(text)))
    while 0 < index < len(text) and (_extends_previous(text[index]) or text[index - 1] == _ZWJ):
        index -= 1
    # Flags are pairs of regional indicators: never leave half a pair before the cut.
    run = 0
    while index - run - 1 >= 0 and _is_regional_indicator(text[index - run - 1]):
        run += 1
    if run % 2 == 1 and index < len(text) and _is_regional_indicator(text[index]):
        index -= 1
    return index


def fit(text: str, limit: int, *, escape: Callable[[str], str] | None = None, marker: str = MARKER) -> str:
    """`text` (escaped by `escape` if given) in at most `limit` UTF-16 units, cut with `marker` if needed."""
    transform = escape or (lambda value: value)
    whole = transform(text)
    if units(whole) <= limit:
        return whole
    budget = limit - units(marker)
    if budget <= 0:
        return marker if units(marker) <= limit else ""
    used = 0
    index = len(text)
    for position, char in enumerate(text):
        cost = units(transform(char)) if escape else _char_units(char)
        if used + cost > budget:
            index = position
            break
        used += cost
    cut = safe_cut(text, index)
    return transform(text[:cut].rstrip()) + marker


def fit_lines(lines: Iterable[str], limit: int, *, separator: str = "\n", more: str = "… and {count} more") -> str:
    """Whole lines joined by `separator` within `limit`; lines that do not fit are counted in `more`.

    A first line longer than the limit is itself cut, so the most important line always shows.
    """
    pending = list(lines)
    kept: list[str] = []
    used = 0
    for position, line in enumerate(pending):
        remaining = len(pending) - position - 1
        tail = separator + more.format(count=remaining) if remaining else ""
        cost = units(line) + (units(separator) if kept else 0)
        if used + cost + units(tail) <= limit:
            kept.append(line)
            used += cost
            continue
        if not kept:
            kept.append(fit(line, max(limit - units(tail), 0)))
            used = units(kept[0])
            continue
        note = more.format(count=len(pending) - position)
        return fit(separator.join([*kept, note]), limit)
    return fit(separator.join(kept), limit)
