from datetime import UTC, datetime

import pytest

from memories.timeframes import window_in

NOW = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)  # a Friday


@pytest.mark.parametrize(
    "query, start, end",
    [
        ("what did I say yesterday?", "2026-11-26", "2026-11-27"),
        ("what did we discuss last week", "2026-11-16", "2026-11-23"),
        ("anything from last month?", "2026-10-01", "2026-11-01"),
        ("the trip in May", "2026-05-01", "2026-06-01"),
        ("the trip in December", "2025-12-01", "2026-01-01"),
        ("what happened in March 2024", "2024-03-01", "2024-04-01"),
        ("on March 3rd what did I eat", "2026-03-03", "2026-03-04"),
        ("two weeks ago I told you", "2026-11-10", "2026-11-17"),
        ("in 2023 I moved", "2023-01-01", "2024-01-01"),
    ],
)
def test_it_finds_the_window_a_query_talks_about(query, start, end):
    window = window_in(query, NOW)
    assert (window.start.date().isoformat(), window.end.date().isoformat()) == (start, end)


@pytest.mark.parametrize(
    "query", ["suggest a dinner", "may I ask something", "remember that pooling issue?"]
)
def test_it_finds_no_window_where_there_is_none(query):
    assert window_in(query, NOW) is None


@pytest.mark.parametrize(
    "query", ["what did I do in may 0000", "in 0000", "99999999 days ago", "on march 3 0000"]
)
def test_impossible_dates_give_no_window(query):
    assert window_in(query, NOW) is None
