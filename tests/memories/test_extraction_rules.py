"""The rule-based extractor (no model, no database): the labelled set's precision and recall, one
focused test per statement type, and the date resolver, all at a fixed message time."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from memories.extraction import (
    ExtractedItem,
    extract,
    extract_with_rules,
    find_dates,
    fingerprint,
    resolve_date,
)
from tests.memories.extraction_cases import CASES, HELD_OUT, NOW, Case

TUESDAY = NOW  # 2026-03-10 14:00 UTC


def rules(text: str, now: datetime = NOW) -> list[ExtractedItem]:
    return extract_with_rules(text, now=now)


def triples(text: str) -> set[tuple[str, str, str]]:
    return {(i.kind, i.subject, i.op) for i in rules(text)}


def only(text: str) -> ExtractedItem:
    [item] = rules(text)
    return item


# --- the labelled set -----------------------------------------------------------------------------


def _matches(expected: tuple, item: ExtractedItem) -> bool:
    kind, subject, op = expected[:3]
    same_subject = (
        item.subject.startswith(subject[:-1]) if subject.endswith("*") else item.subject == subject
    )
    return item.kind == kind and item.op == op and same_subject


def _score(cases: tuple[Case, ...]) -> tuple[int, int, int, list[str]]:
    """Micro counts over (kind, subject, op): true positives, false positives, false negatives, and
    the wrong texts and attributes among the true positives."""
    tp = fp = fn = 0
    wrong: list[str] = []
    for case in cases:
        found = rules(case.text)
        for expected in case.expected:
            hit = next((item for item in found if _matches(expected, item)), None)
            if hit is None:
                fn += 1
                continue
            tp += 1
            found.remove(hit)
            if len(expected) > 3 and hit.text != expected[3]:
                wrong.append(f"{case.text!r}: text {hit.text!r} != {expected[3]!r}")
            if case.attributes and expected is case.expected[0]:
                if any(hit.attributes.get(k) != v for k, v in case.attributes.items()):
                    wrong.append(
                        f"{case.text!r}: attributes {hit.attributes} lack {case.attributes}"
                    )
        fp += len(found)
    return tp, fp, fn, wrong


@pytest.mark.parametrize("name, cases", [("labelled", CASES), ("held-out", HELD_OUT)])
def test_precision_and_recall_on_the_labelled_set(name, cases, report_score):
    tp, fp, fn, wrong = _score(cases)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    negatives = sum(1 for c in cases if not c.expected)
    report_score(
        f"\n{name}: {len(cases)} utterances ({negatives} negatives), {tp + fn} expected items: "
        f"precision {precision:.3f}, recall {recall:.3f} (tp={tp} fp={fp} fn={fn})"
    )
    assert precision >= 0.9
    assert recall >= 0.8
    assert wrong == []


def test_the_labelled_set_is_big_enough_and_has_negatives():
    assert len(CASES) >= 80
    assert sum(1 for c in CASES if not c.expected) >= 20


# --- statement types ------------------------------------------------------------------------------


def test_name_preferred_name_and_nationality():
    assert only("My name is Maria Lopez.").text == "User's name is Maria Lopez"
    assert only("I'm Sam.").subject == "name"
    assert only("Call me Al.").subject == "preferred name"
    assert only("I'm Italian.").text == "User is Italian"
    assert triples("I'm Italian.") == {("fact", "nationality", "add")}  # not a name


def test_location_and_moves_use_one_subject():
    assert only("I live in Lisbon.").text == "User lives in Lisbon"
    moved = only("I just moved to Berlin!")
    assert (moved.kind, moved.subject, moved.text) == ("fact", "location", "User lives in Berlin")
    assert only("I moved from Paris to Berlin last month.").text == "User lives in Berlin"
    assert only("I'm from Toronto originally.").subject == "hometown"


def test_work():
    assert {(i.subject, i.text) for i in rules("I'm a software engineer at Stripe.")} == {
        ("occupation", "User is a software engineer"),
        ("employer", "User works at Stripe"),
    }
    assert only("I work for Google.").text == "User works at Google"
    assert rules("I'm a terrible cook.") == []


def test_diet_is_the_users_own():
    assert only("I'm vegetarian.").text == "User is vegetarian"
    assert only("My wife and I are vegan.").text == "User is vegan"
    assert triples("My sister is vegan.") == {("relationship", "person:sister:diet", "add")}
    assert triples("If I were vegetarian, I'd miss bacon.") == set()
    assert triples("I'm thinking about becoming vegetarian.") == set()
    assert triples("My friend said she is vegetarian.") == set()


def test_allergies_each_get_a_subject():
    assert {(i.subject, i.text) for i in rules("I'm allergic to peanuts and shellfish.")} == {
        ("allergy:peanut", "User is allergic to peanuts"),
        ("allergy:shellfish", "User is allergic to shellfish"),
    }
    assert only("I have a peanut allergy.").subject == "allergy:peanut"


def test_likes_and_dislikes():
    assert only("I love sushi.").text == "User loves sushi"
    assert only("I can't stand country music.").subject == "taste:country music"
    assert only("I also enjoy climbing on weekends.").subject == "taste:climbing"
    assert only("My favorite band is Radiohead.").subject == "favorite:band"
    assert rules("I love that idea!") == []
    assert rules("I love you") == []


def test_people_with_the_same_name_are_different_people():
    subjects = {
        i.subject for i in rules("My brother Sam is a doctor and my colleague Sam works at Google.")
    }
    assert {"person:sam:brother", "person:sam:colleague"} <= subjects
    assert "person:sam:brother:occupation" in subjects
    assert "person:sam:colleague:employer" in subjects
    assert only("Sam is my brother.").subject == "person:sam:brother"
    assert only("I have a daughter named Lily.").text == "User's daughter is Lily"


def test_birthdays():
    mine = only("My birthday is on May 5th.")
    assert (mine.subject, mine.text) == ("birthday", "User's birthday is May 5")
    assert mine.attributes == {"month_day": "05-05", "date": "2026-05-05"}
    born = only("I was born on 12 March 1990.")
    assert born.text == "User's birthday is March 12, 1990"
    assert born.attributes["birth_date"] == "1990-03-12"
    assert only("It's my birthday today!").attributes["date"] == "2026-03-10"


def test_deadlines_and_events_get_absolute_dates():
    launch = only("The API launch is due next Friday.")
    assert (launch.kind, launch.subject) == ("project", "project:api launch")
    assert launch.text == "The API launch is due on 2026-03-20"
    assert launch.attributes == {"date": "2026-03-20"}
    slides = only("I need to submit the report by the 12th.")
    assert slides.attributes == {"date": "2026-03-12"}
    assert slides.text == "User needs to submit the report by 2026-03-12"
    dentist = only("I have a dentist appointment tomorrow.")
    assert (dentist.kind, dentist.subject, dentist.attributes) == (
        "event",
        "event:dentist appointment",
        {"date": "2026-03-11"},
    )


def test_projects_and_their_status():
    building = only("I'm building a FastAPI service for invoices.")
    assert (building.subject, building.attributes) == (
        "project:fastapi service for invoices",
        {"status": "active"},
    )
    assert only("We finally launched the mobile app!").attributes == {"status": "done"}
    stopped = only("I stopped working on the billing app.")
    assert (stopped.subject, stopped.op) == ("project:billing app", "retract")


def test_remember_pins_what_it_says():
    vegetarian = only("Remember that I'm vegetarian.")
    assert (vegetarian.subject, vegetarian.pinned) == ("diet", True)
    note = only("Remember that the wifi password is hunter2.")
    assert (note.text, note.pinned) == ("The wifi password is hunter2", True)
    assert note.subject == "note:" + fingerprint(note.text)[:16]
    assert only("Can you remember that my sister's name is Anna?").subject == "person:anna:sister"
    assert rules("Remember that pooling issue? Any new ideas?") == []


def test_forget_names_what_to_erase():
    paris = only("Forget that I live in Paris.")
    assert (paris.op, paris.kind, paris.subject, paris.text) == (
        "forget",
        "fact",
        "location",
        "User lives in Paris",
    )
    address = only("Forget my address.")
    assert (address.op, address.subject, address.text) == ("forget", "address", "User's address")
    sister = only("Forget about my sister.")
    assert (sister.op, sister.kind, sister.subject, sister.text) == (
        "forget",
        "relationship",
        "",
        "User's sister",
    )
    assert rules("Forget it.") == []
    # a figure of speech erases nothing
    assert rules("Forget the API, let's talk about food.") == []
    assert rules("I forgot my keys.") == []


def test_retractions_end_a_subject():
    assert (only("I'm no longer vegetarian.").subject, only("I'm no longer vegetarian.").op) == (
        "diet",
        "retract",
    )
    assert only("I'm not vegetarian any more.").text == "User is no longer vegetarian"
    quit_ = only("I quit my job at Acme.")
    assert (quit_.subject, quit_.op, quit_.text) == (
        "employer",
        "retract",
        "User no longer works at Acme",
    )
    paris = only("I don't live in Paris anymore.")
    assert (paris.subject, paris.op, paris.text) == (
        "location",
        "retract",
        "User no longer lives in Paris",
    )
    tennis = only("I no longer play tennis.")
    assert (tennis.kind, tennis.subject, tennis.op, tennis.text) == (
        "fact",
        "",
        "retract",
        "User no longer plays tennis",
    )
    assert only("I'm no longer married.").subject == "relationship status"


def test_a_retraction_comes_before_the_new_value():
    ops = [(i.op, i.text) for i in rules("I moved to Berlin, I don't live in Paris anymore.")]
    assert ops == [("retract", "User no longer lives in Paris"), ("add", "User lives in Berlin")]


def test_instructions_have_one_subject_per_topic():
    assert only("Always answer in English.").subject == "instruction:language"
    assert only("I'd like you to answer in French from now on.").subject == "instruction:language"
    assert only("Please keep your answers short.").subject == "instruction:length"
    assert only("Never use emojis.").subject == "instruction:emoji"
    assert rules("Write me a haiku about autumn.") == []


def test_the_same_fact_said_twice_gives_the_same_item():
    first, again = only("I'm vegetarian."), only("Just so you know, I’m vegetarian!")
    assert (first.kind, first.subject, first.text) == (again.kind, again.subject, again.text)
    monday, wednesday = datetime(2026, 3, 9, tzinfo=UTC), datetime(2026, 3, 11, tzinfo=UTC)
    assert (
        rules("The launch is due on Friday.", monday)[0].text
        == rules("The launch is due on Friday.", wednesday)[0].text
    )


def test_questions_and_small_talk_state_nothing():
    for text in (
        "Am I vegetarian?",
        "Should I move to Berlin?",
        "Thanks, that was helpful!",
        "lol ok",
        "Hello!",
    ):
        assert rules(text) == [], text


def test_extract_without_a_model_uses_the_rules():
    items, extractor = extract("I live in Porto.", [(1, "Hi")], now=NOW, message_id=2)
    assert extractor == "rules"
    assert [(i.subject, i.text, i.message_id) for i in items] == [
        ("location", "User lives in Porto", None)
    ]


# --- the date resolver ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phrase, expected",
    [
        ("today", "2026-03-10"),
        ("tonight", "2026-03-10"),
        ("tomorrow", "2026-03-11"),
        ("yesterday", "2026-03-09"),
        ("the day after tomorrow", "2026-03-12"),
        ("Friday", "2026-03-13"),  # the next one after today
        ("on Friday", "2026-03-13"),
        ("this Friday", "2026-03-13"),
        ("next Friday", "2026-03-20"),  # the Friday of next week
        ("last Friday", "2026-03-06"),
        ("Tuesday", "2026-03-17"),  # today is Tuesday: the next one
        ("this Tuesday", "2026-03-10"),
        ("next Monday", "2026-03-16"),
        ("this weekend", "2026-03-14"),
        ("next weekend", "2026-03-21"),
        ("in two weeks", "2026-03-24"),
        ("in 3 days", "2026-03-13"),
        ("in a month", "2026-04-10"),
        ("two weeks from now", "2026-03-24"),
        ("3 days ago", "2026-03-07"),
        ("on May 5th", "2026-05-05"),
        ("May 5th, 2027", "2027-05-05"),
        ("the 5th of May", "2026-05-05"),
        ("5 May", "2026-05-05"),
        ("on March 1", "2027-03-01"),  # already past this year: next year's
        ("on the 12th", "2026-03-12"),
        ("on the 9th", "2026-04-09"),  # this month's is past: next month's
        ("by the 31st", "2026-03-31"),
        ("2026-12-04", "2026-12-04"),
        ("the end of the month", "2026-03-31"),
        ("the end of next week", "2026-03-20"),
        ("Friday, March 20", "2026-03-20"),
    ],
)
def test_resolve_date(phrase, expected):
    assert resolve_date(phrase, TUESDAY) == date.fromisoformat(expected)


def test_resolve_date_in_the_past_tense_and_with_no_date():
    assert resolve_date("May 5th", TUESDAY, past=True) == date(2025, 5, 5)
    assert resolve_date("the 12th", TUESDAY) is None  # "the 12th" alone could be anything
    assert resolve_date("someday", TUESDAY) is None
    assert resolve_date("February 30", TUESDAY) is None


def test_find_dates_gives_spans_and_precision():
    [launch] = find_dates("The launch is due next Friday, not before.", TUESDAY)
    assert (
        "The launch is due next Friday, not before."[launch.start : launch.end],
        launch.iso,
    ) == (
        "next Friday",
        "2026-03-20",
    )
    [month] = find_dates("We move in June.", TUESDAY)
    assert (month.iso, month.precision) == ("2026-06-01", "month")
    assert find_dates("I sat in the sun", TUESDAY) == []  # "sat" and "sun" are not weekdays


@pytest.mark.parametrize(
    "text",
    [
        "I moved to Lisbon in 0000.",
        "The launch is due in 99999999 years.",
        "My birthday is on May 5 0000.",
    ],
)
def test_impossible_dates_do_not_break_extraction(text):
    from datetime import UTC, datetime

    from memories.extraction import extract_with_rules

    extract_with_rules(text, now=datetime(2026, 11, 27, tzinfo=UTC))  # no exception
