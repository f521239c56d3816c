"""Dates in English text, resolved to absolute dates against the time of the message.

Understood: ISO dates; "May 5th", "5 May", "the 5th of May" (with or without a year, and a weekday
before); "on the 12th"; today, tonight, tomorrow, yesterday, the day after tomorrow; weekdays
("Friday", "this Friday", "next Friday", "last Friday"); "this/next weekend"; "in two weeks", "3
days from now", "two days ago"; "next week/month/year"; "(by) the end of the week/month/year"; "in
May", "in 2027".

Conventions: a bare weekday ("on Friday") is the next one after today; "this Friday" is the next one
on or after today; "next Friday" is the Friday of next week (weeks start on Monday); "end of the
week" is its Friday. A date without a year is the next one on or after today, or, with `past=True`
(a sentence in the past tense), the last one on or before today. Week, month and year phrases
resolve to their first day and say so in `precision`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dateutil.relativedelta import relativedelta

_WEEKDAY = r"(?P<weekday>monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_MONTH = (
    r"(?P<month>january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\.?"
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a couple of": 2, "couple of": 2,
}  # fmt: skip
_NUMBER = r"(?P<n>\d{1,3}|a couple of|couple of|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
_UNIT = r"(?P<unit>day|week|month|year|hour|minute)s?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s+(?P<year>\d{4}))?"
_LEAD_WEEKDAY = r"(?:" + _WEEKDAY.replace("?P<weekday>", "?:") + r",?\s+(?:the\s+)?)?"


@dataclass(frozen=True)
class DateMatch:
    """A date expression found in a text: where it is and the date it means."""

    start: int
    end: int
    value: date
    precision: str = "day"  # "day", "week", "month" or "year"

    @property
    def iso(self) -> str:
        return self.value.isoformat()


@dataclass(frozen=True)
class _Context:
    today: date
    past: bool


def _month_number(name: str) -> int:
    return _MONTHS.index(name.lower()[:3]) + 1


def _weekday_number(name: str) -> int:
    return _DAYS.index(name.lower()[:3])


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _month_day(ctx: _Context, month: int, day: int, year: str | None) -> date | None:
    """A month and day, in the given year or the nearest one in the direction of the sentence's
    tense."""
    if year:
        return _safe_date(int(year), month, day)
    # five years: room for a February 29th
    for offset in range(0, -5, -1) if ctx.past else range(5):
        candidate = _safe_date(ctx.today.year + offset, month, day)
        if candidate and _on_side(candidate, ctx):
            return candidate
    return None


def _on_side(candidate: date, ctx: _Context) -> bool:
    """On or after today (on or before, in the past tense)."""
    return candidate <= ctx.today if ctx.past else candidate >= ctx.today


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _weekday_date(ctx: _Context, weekday: int, modifier: str) -> date:
    today = ctx.today
    if modifier == "next":
        return _monday(today) + timedelta(days=7 + weekday)
    if modifier in ("last", "past") or (ctx.past and not modifier):
        return today - timedelta(days=(today.weekday() - weekday) % 7 or (7 if modifier else 0))
    if modifier == "this":
        return today + timedelta(days=(weekday - today.weekday()) % 7)
    return today + timedelta(days=(weekday - today.weekday()) % 7 or 7)


def _iso(m: re.Match, ctx: _Context) -> tuple[date, str] | None:
    value = _safe_date(int(m["year"]), int(m["month"]), int(m["day"]))
    return (value, "day") if value else None


def _month_then_day(m: re.Match, ctx: _Context) -> tuple[date, str] | None:
    value = _month_day(ctx, _month_number(m["month"]), int(m["day"]), m["year"])
    return (value, "day") if value else None


def _nth(m: re.Match, ctx: _Context) -> tuple[date, str] | None:
    """ "on the 12th": the next 12th (or the last one, in the past tense)."""
    day, step = int(m["day"]), -1 if ctx.past else 1
    for months in range(0, 3 * step, step):
        month_start = ctx.today.replace(day=1) + relativedelta(months=months)
        candidate = _safe_date(month_start.year, month_start.month, day)
        if candidate and _on_side(candidate, ctx):
            return candidate, "day"
    return None


_RELATIVE_DAYS = {
    "today": 0,
    "tonight": 0,
    "this": 0,
    "tomorrow": 1,
    "yesterday": -1,
    "last night": -1,
}


def _relative_day(m: re.Match, ctx: _Context) -> tuple[date, str]:
    phrase = " ".join(m.group(0).lower().split())
    if phrase.startswith("the day after"):
        return ctx.today + timedelta(days=2), "day"
    if phrase.startswith("the day before"):
        return ctx.today - timedelta(days=2), "day"
    key = next(k for k in _RELATIVE_DAYS if phrase.startswith(k))
    return ctx.today + timedelta(days=_RELATIVE_DAYS[key]), "day"


def _weekday(m: re.Match, ctx: _Context) -> tuple[date, str]:
    modifier = (m["modifier"] or "").lower().split()[-1:] or [""]
    modifier = {"coming": "", "following": "next"}.get(modifier[0], modifier[0])
    if m["week"]:  # "Friday next week"
        modifier = "next" if m["week"].lower() == "next" else "this"
    return _weekday_date(ctx, _weekday_number(m["weekday"]), modifier), "day"


def _weekend(m: re.Match, ctx: _Context) -> tuple[date, str]:
    modifier = (m["modifier"] or "this").lower()
    return _weekday_date(
        ctx, 5, modifier if modifier in ("next", "last", "past") else "this"
    ), "day"


def _offset(m: re.Match, ctx: _Context) -> tuple[date, str] | None:
    n = _NUMBERS.get(" ".join(m["n"].lower().split())) or int(m["n"])
    unit = m["unit"].lower()
    if unit in ("hour", "minute"):
        return None  # "in 5 minutes": a moment, not a date worth remembering
    sign = -1 if m.groupdict().get("dir", "").lower() == "ago" else 1
    return ctx.today + relativedelta(**{unit + "s": sign * n}), "day"


def _period_start(ctx: _Context, unit: str, modifier: str) -> date:
    step = {"next": 1, "last": -1}.get(modifier, 0)
    if unit == "week":
        return _monday(ctx.today) + timedelta(weeks=step)
    if unit == "month":
        return ctx.today.replace(day=1) + relativedelta(months=step)
    return date(ctx.today.year + step, 1, 1)


def _period(m: re.Match, ctx: _Context) -> tuple[date, str]:
    unit, modifier = m["unit"].lower(), (m["modifier"] or "this").lower().split()[-1]
    start = _period_start(ctx, unit, modifier)
    return (max(start, ctx.today) if modifier == "this" else start), unit


def _end_of(m: re.Match, ctx: _Context) -> tuple[date, str]:
    unit, modifier = m["unit"].lower(), (m["modifier"] or "this").lower()
    if unit == "day":
        return ctx.today, "day"
    start = _period_start(ctx, unit, modifier)
    if unit == "week":
        return start + timedelta(days=4), "day"
    if unit == "month":
        return start + relativedelta(months=1, days=-1), "day"
    return date(start.year, 12, 31), "day"


def _in_month(m: re.Match, ctx: _Context) -> tuple[date, str] | None:
    """ "in May", "in May 2027", "last June", "next March": the first day of that month."""
    year, modifier = m.groupdict().get("year"), (m.groupdict().get("modifier") or "").lower()
    past = modifier == "last" if modifier else ctx.past
    value = _month_day(_Context(ctx.today, past), _month_number(m["month"]), 1, year)
    if value and not (year or past or modifier == "next") and value.month == ctx.today.month:
        value = ctx.today.replace(day=1)  # "in March" said in March: this March
    return (value, "month") if value else None


def _in_year(m: re.Match, ctx: _Context) -> tuple[date, str]:
    return date(int(m["year"]), 1, 1), "year"


_Handler = Callable[[re.Match, _Context], "tuple[date, str] | None"]


def _pattern(regex: str) -> re.Pattern:
    return re.compile(r"\b" + regex + r"\b", re.I)


_PATTERNS: tuple[tuple[re.Pattern, _Handler], ...] = (
    (_pattern(r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"), _iso),
    (_pattern(_LEAD_WEEKDAY + _MONTH + r"\s+" + _DAY + r"(?!\d)" + _YEAR), _month_then_day),
    (
        _pattern(_LEAD_WEEKDAY + r"(?:the\s+)?" + _DAY + r"\s+(?:of\s+)?" + _MONTH + _YEAR),
        _month_then_day,
    ),
    (
        _pattern(r"(?:on|by|until|till|before|after|for|from|since)\s+(?P<at>the\s+" + _DAY + ")"),
        _nth,
    ),
    (
        _pattern(
            r"(?:the day after tomorrow|the day before yesterday|today|tonight|tomorrow|yesterday|last night"
            r"|this (?:morning|afternoon|evening))"
        ),
        _relative_day,
    ),
    (
        _pattern(
            r"(?:(?P<modifier>next|this|last|past|coming|this coming|following)\s+)?(?:the\s+)?weekend"
        ),
        _weekend,
    ),
    (
        _pattern(
            r"(?:(?P<modifier>next|this|last|past|coming|this coming|following)\s+)?"
            + _WEEKDAY
            + r"(?:\s+(?P<week>next|this)\s+week)?"
        ),
        _weekday,
    ),
    (_pattern(r"in\s+" + _NUMBER + r"\s+" + _UNIT), _offset),
    (_pattern(_NUMBER + r"\s+" + _UNIT + r"\s+(?P<dir>from now|from today|ago|later)"), _offset),
    (
        _pattern(
            r"(?:the\s+)?end\s+of\s+(?:the\s+|(?P<modifier>this|next|last)\s+)?(?P<unit>week|month|year|day)"
        ),
        _end_of,
    ),
    (
        _pattern(
            r"(?P<modifier>next|this|last|the coming|the following)\s+(?P<unit>week|month|year)"
        ),
        _period,
    ),
    (_pattern(r"in\s+" + _MONTH + _YEAR), _in_month),
    (
        _pattern(
            r"(?:for|by|until|till|before|after|during|since|from)\s+(?P<at>" + _MONTH + _YEAR + ")"
        ),
        _in_month,
    ),
    (_pattern(r"(?P<modifier>last|next|this)\s+" + _MONTH), _in_month),
    (_pattern(r"in\s+(?P<year>\d{4})"), _in_year),
)


def find_dates(text: str, now: datetime | date, *, past: bool = False) -> list[DateMatch]:
    """Every date expression in `text`, resolved against `now`, left to right and not overlapping
    (at one place the longest expression wins)."""
    ctx = _Context(now.date() if isinstance(now, datetime) else now, past)
    found: list[DateMatch] = []
    for pattern, handler in _PATTERNS:
        for m in pattern.finditer(text):
            try:
                resolved = handler(m, ctx)
            # "in 0000", "in 99999 years": not a date we can hold
            except (
                ValueError,
                OverflowError,
            ):
                continue
            if resolved and resolved[0]:
                # without the preposition
                span = m.span("at") if "at" in pattern.groupindex else m.span()
                found.append(DateMatch(span[0], span[1], resolved[0], resolved[1]))
    found.sort(key=lambda d: (d.start, d.start - d.end))
    result: list[DateMatch] = []
    for match in found:
        if not result or match.start >= result[-1].end:
            result.append(match)
    return result


def resolve_date(phrase: str, now: datetime | date, *, past: bool = False) -> date | None:
    """The date `phrase` means, when the whole phrase (after a preposition) is one date expression
    ("next Friday", "on the 12th")."""
    phrase = phrase.strip()
    matches = find_dates(phrase, now, past=past)
    if len(matches) != 1 or matches[0].end != len(phrase):
        return None
    lead = phrase[: matches[0].start]
    return (
        matches[0].value
        if re.fullmatch(r"(?:(?:on|by|at|until|till|before|after|for)\s+)?", lead, re.I)
        else None
    )


def month_day_text(value: date) -> str:
    """ "May 5", for dates that recur every year."""
    return f"{value:%B} {value.day}"
