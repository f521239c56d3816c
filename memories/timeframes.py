"""Time in queries: "last week", "yesterday", "in May", "on March 3", "3 days ago" → a window of
time."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS |= {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_MONTH = r"(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
}


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime  # exclusive

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _month_window(year: int, month: int, now: datetime) -> Window:
    start = _day(now).replace(year=year, month=month, day=1)
    end = start.replace(year=year + 1, month=1) if month == 12 else start.replace(month=month + 1)
    return Window(start, end)


def _relative(text: str, now: datetime) -> Window | None:
    today = _day(now)
    week_start = today - timedelta(days=today.weekday())
    month_start = today.replace(day=1)
    fixed = {
        "today": Window(today, today + timedelta(days=1)),
        "yesterday": Window(today - timedelta(days=1), today),
        "this week": Window(week_start, week_start + timedelta(days=7)),
        "last week": Window(week_start - timedelta(days=7), week_start),
        "last weekend": Window(week_start - timedelta(days=2), week_start),
        "this month": Window(month_start, now + timedelta(seconds=1)),
        "last month": Window((month_start - timedelta(days=1)).replace(day=1), month_start),
        "this year": Window(today.replace(month=1, day=1), now + timedelta(seconds=1)),
        "last year": Window(
            today.replace(year=today.year - 1, month=1, day=1), today.replace(month=1, day=1)
        ),
        "recently": Window(today - timedelta(days=14), now + timedelta(seconds=1)),
    }
    for phrase, window in fixed.items():
        if re.search(rf"\b{phrase}\b", text):
            return window
    if m := re.search(
        r"\b(\d+|a|an|one|two|three|four|five|six|seven) (day|week|month)s? ago\b", text
    ):
        count = int(m.group(1)) if m.group(1).isdigit() else _NUMBERS[m.group(1)]
        days = count * {"day": 1, "week": 7, "month": 30}[m.group(2)]
        center = today - timedelta(days=days)
        slack = timedelta(days=max(1, days // 4))
        return Window(center - slack, center + slack + timedelta(days=1))
    return None


def _absolute(text: str, now: datetime) -> Window | None:
    if m := re.search(rf"\b(?:on |)?{_MONTH} (\d{{1,2}})(?:st|nd|rd|th)?(?:,? (\d{{4}}))?\b", text):
        month, day, year = MONTHS[m.group(1)], int(m.group(2)), int(m.group(3) or now.year)
        if 1 <= day <= calendar.monthrange(year, month)[1]:
            start = _day(now).replace(year=year, month=month, day=day)
            return Window(start, start + timedelta(days=1))
    if m := re.search(rf"\b(?:in|during|since|last) {_MONTH}(?: (\d{{4}}))?\b", text):
        month = MONTHS[m.group(1)]
        year = int(m.group(2)) if m.group(2) else (now.year if month <= now.month else now.year - 1)
        return _month_window(year, month, now)
    if m := re.search(r"\bin (19\d\d|20\d\d)\b", text):
        start = _day(now).replace(year=int(m.group(1)), month=1, day=1)
        return Window(start, start.replace(year=start.year + 1))
    return None


def window_in(query: str, now: datetime) -> Window | None:
    """The time window a query talks about, relative to `now` (timezone-aware), or None."""
    text = query.lower()
    try:
        return _relative(text, now) or _absolute(text, now)
    except (ValueError, OverflowError):  # "in 0000", "9999999 days ago": no window we can represent
        return None
