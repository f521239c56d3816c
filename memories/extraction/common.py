"""What the rule modules share: the clause being read, name and place patterns, negation and
dates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from .dates import DateMatch, find_dates

IM = r"(?:i'm|i am|im)"  # text is normalized first: typographic apostrophes are plain
NAME = r"[A-Z][a-z]+(?:-[A-Z][a-z]+)?"
# Capitalized words that follow "I'm" or "my brother is" without being names.
NOT_NAMES = frozenset(
    "Not Also Just Really So Very Still Going Sure Sorry Happy Glad Here Back Fine Good Okay Ok Working "
    "Building Allergic Vegetarian Vegan Pescatarian Keto Married Single Engaged Divorced Retired Done Tired "
    "Busy Ready Interested A An The In At On From Off Out Up Down Over Currently Now Always Never Quite "
    "Pretty Too Thinking Looking Trying Learning Moving Leaving Heading Planning Based Living Sick Late "
    "Early Hungry Excited Afraid Worried Stressed Bored Curious Confused Lost Home Yes No Hey Hi Hello "
    "Well Thanks Thank Great Awesome Cool Nice Alright Right True False Only Even Almost Half Big Little "
    "Today Tomorrow Yesterday Monday Tuesday Wednesday Thursday Friday Saturday Sunday Christmas".split()
)
NATIONALITIES = frozenset(
    "American British English Scottish Welsh Irish Canadian Mexican Brazilian Argentinian Chilean Colombian "
    "Peruvian French German Italian Spanish Portuguese Dutch Belgian Swiss Austrian Swedish Norwegian Danish "
    "Finnish Icelandic Polish Czech Slovak Hungarian Romanian Bulgarian Greek Turkish Russian Ukrainian "
    "Serbian Croatian Slovenian Estonian Latvian Lithuanian Israeli Egyptian Moroccan Nigerian Kenyan "
    "Ethiopian Ghanaian African Indian Pakistani Bangladeshi Chinese Japanese Korean Vietnamese Thai "
    "Filipino Indonesian Malaysian Singaporean Australian Kiwi European Asian Latino Latina Hispanic "
    "Persian Iranian Iraqi Syrian Lebanese Jordanian Saudi Emirati Taiwanese Cuban Venezuelan".split()
)
RELIGIONS = frozenset(
    "Catholic Protestant Christian Jewish Muslim Hindu Buddhist Sikh Mormon Atheist Agnostic".split()
)
# A place: capitalized words ("New York City", "Frankfurt am Main"), maybe ", Region" ("Portland,
# Oregon").
_WORD = r"[A-Z][\w'.-]*"
PLACE = (
    r"((?:the\s+)?" + _WORD + r"(?:\s+(?:(?:of|de|da|del|la|le|am|upon|on)\s+)?" + _WORD + r")*"
    r"(?:,\s+(?!I\b)" + _WORD + r"(?:\s+" + _WORD + r")*)?)"
)
ORG_NOUNS = (
    r"company|startup|start-up|bank|hospital|clinic|school|university|college|agency|firm|studio|store|shop|"
    r"restaurant|cafe|café|lab|nonprofit|non-profit|charity|consultancy|corporation|bakery|hotel|factory|"
    r"pharmacy|newspaper|magazine|publisher|retailer|supermarket|warehouse|library|museum|ministry|council|"
    r"airline|law firm|insurance company|tech company|government"
)
# An employer: a capitalized name ("Google", "Acme Corp", "Procter & Gamble") or "a bank", "a small
# startup".
EMPLOYER = (
    r"((?:the\s+)?[A-Z][\w&.'-]*(?:\s+(?:&\s+)?[A-Z][\w&.'-]*)*|(?:an?|the)\s+(?:[a-z-]+\s+){0,2}(?:"
    + ORG_NOUNS
    + r"))\b"
)
_PAST = re.compile(
    r"\b(?:i|we)\s+(?:just\s+|already\s+|recently\s+|finally\s+)?(?:\w+(?<!e)ed|was|were|did|had|went|got|ran|met|saw|"
    r"flew|took|won|lost|began|became|left|bought|gave|came|wrote|spent)\b|\b(?:was|were)\b",
    re.I,
)
_BEFORE_DATE = re.compile(
    r"\b(on|by|before|until|till|after|since|from|for|through|starting|at|in)\s+$", re.I
)


@dataclass(frozen=True)
class Clause:
    """One clause of a user's message (a sentence split at "and I", "but my", ";"), with its
    time."""

    text: str
    now: datetime

    @property
    def today(self) -> date:
        return self.now.date()

    @property
    def past(self) -> bool:
        return bool(_PAST.search(self.text))


def is_name(word: str) -> bool:
    """Whether `word` can be a person's name: capitalized, and not a word like "Sorry" or
    "Italian"."""
    return bool(re.fullmatch(NAME, word)) and word not in NOT_NAMES | NATIONALITIES | RELIGIONS


def first_date(clause: Clause, text: str | None = None) -> DateMatch | None:
    found = find_dates(clause.text if text is None else text, clause.now, past=clause.past)
    return found[0] if found else None


def with_absolute_dates(text: str, clause: Clause) -> tuple[str, dict]:
    """`text` with its date expressions written as absolute dates, and {"date": ISO} of the first
    one."""
    matches = find_dates(text, clause.now, past=clause.past)
    for match in reversed(matches):
        before = text[: match.start]
        prep = _BEFORE_DATE.search(before)
        # "at the end of the month" -> "on 2026-03-31"
        if prep and prep.group(1).lower() in (
            "at",
            "in",
        ):
            before, prep = before[: prep.start()], None
        text = before + _written(match, after_preposition=bool(prep)) + text[match.end :]
    if not matches:
        return text, {}
    attributes = {"date": matches[0].iso}
    if matches[0].precision != "day":
        attributes["date_precision"] = matches[0].precision
    return text, attributes


def _written(match: DateMatch, *, after_preposition: bool) -> str:
    """ "on 2026-03-20" ("by 2026-03-20" keeps its preposition), "in April 2026", "in the week of
    ..."."""
    if match.precision == "month":
        written = f"{match.value:%B %Y}"
    elif match.precision == "year":
        written = str(match.value.year)
    elif match.precision == "week":
        written = f"the week of {match.iso}"
    else:
        written = match.iso
    return (
        written if after_preposition else ("on " if match.precision == "day" else "in ") + written
    )
