"""Rules for the people (and pets) in the user's life: who they are to the user, and what the user
says about them. Each person's subject is "person:<name>:<relation>" ("person:sam:brother" and
"person:sam:colleague" are two people), or "person:<relation>" when no name is given; what is said
about them gets the person's subject plus a topic ("person:sister:diet")."""

from __future__ import annotations

import re

from memories.text import singular

from .common import EMPLOYER, NAME, PLACE, Clause, first_date, is_name, with_absolute_dates
from .dates import month_day_text
from .english import clean, third_person
from .items import ExtractedItem
from .preferences import DIETS
from .profile import ROLE

_RELATIONS = {
    "wife": "wife", "husband": "husband", "partner": "partner", "spouse": "spouse", "girlfriend": "girlfriend",
    "boyfriend": "boyfriend", "fiance": "fiancé", "fiancé": "fiancé", "fiancee": "fiancée", "fiancée": "fiancée",
    "son": "son", "daughter": "daughter", "child": "child", "kid": "child", "baby": "baby", "brother": "brother",
    "sister": "sister", "sibling": "sibling", "twin": "twin", "mother": "mother", "mom": "mother", "mum": "mother",
    "father": "father", "dad": "father", "parents": "parents", "stepmother": "stepmother", "stepfather": "stepfather",
    "stepson": "stepson", "stepdaughter": "stepdaughter", "grandmother": "grandmother", "grandma": "grandmother",
    "grandfather": "grandfather", "grandpa": "grandfather", "grandson": "grandson", "granddaughter": "granddaughter",
    "aunt": "aunt", "uncle": "uncle", "cousin": "cousin", "niece": "niece", "nephew": "nephew",
    "mother-in-law": "mother-in-law", "father-in-law": "father-in-law", "brother-in-law": "brother-in-law",
    "sister-in-law": "sister-in-law", "friend": "friend", "best friend": "best friend", "boss": "boss",
    "manager": "manager", "colleague": "colleague", "coworker": "colleague", "co-worker": "colleague",
    "teammate": "teammate", "mentor": "mentor", "roommate": "roommate", "flatmate": "flatmate",
    "neighbor": "neighbor", "neighbour": "neighbor", "dog": "dog", "cat": "cat", "puppy": "dog", "kitten": "cat",
    "pet": "pet", "horse": "horse", "rabbit": "rabbit", "parrot": "parrot", "kids": "child", "children": "child",
}  # fmt: skip
_REL = (
    r"(?P<rel>(?i:ex-)?(?i:"
    + "|".join(sorted(map(re.escape, _RELATIONS), key=len, reverse=True))
    + r"))"
)
_RELS = (
    r"(?P<rel>(?i:"
    + "|".join(sorted(map(re.escape, _RELATIONS), key=len, reverse=True))
    + r")(?i:s)?)"
)
_MOD = r"(?P<mod>(?i:older|younger|little|big|baby|twin|new|old|eldest|oldest|youngest|elder)\s+)?"
_NAMED = re.compile(
    r"\b(?i:my|our)\s+"
    + _MOD
    + _REL
    + r"(?:(?i:'s name is| is called| is named| named| called| is)\s+|,\s+|\s+)(?P<name>"
    + NAME
    + r")\b"
)
_IS_MY = re.compile(r"\b(?P<name>" + NAME + r")(?:\s+is|,)\s+(?i:my)\s+" + _MOD + _REL + r"\b")
_HAVE_NAMED = re.compile(
    r"\b(?i:i have)\s+(?i:an?)\s+"
    + _MOD
    + _REL
    + r"(?:\s+(?i:named|called))?\s+(?P<name>"
    + NAME
    + r")\b"
)
_HAVE = re.compile(
    r"^(?i:i have|i've got|we have|(?:i'm|i am) [\w\s]+? with)\s+(?P<count>(?i:an?|one|two|three|four|five|six|\d))\s+"
    + _MOD
    + _RELS
    + r"\s*$"
)
_UNNAMED = re.compile(
    r"\b(?i:my)\s+" + _MOD + _REL + r"(?=\s*(?:'s|is|lives|works|moved|just|has|was|passed|died)\b)"
)
_BROKE_UP = re.compile(
    r"\b(?i:i|we)\s+(?i:(?:just\s+)?(?:broke up with|divorced|split up with|separated from))\s+(?:(?i:my)\s+"
    + _REL
    + r"(?:,?\s+)?)?(?P<name>"
    + NAME
    + r")?"
)
_ABOUT = (
    ("occupation", re.compile(r"^\s*(?:is|'s)\s+(?:an?)\s+(?i:" + ROLE + r")\b")),
    ("diet", re.compile(r"^\s*(?:is|'s)\s+(?:an?\s+|strictly\s+)?(?i:" + DIETS + r")\b")),
    (
        "location",
        re.compile(
            r"^\s*(?:lives|is living|is based|(?:just |recently )?moved)\s+(?:in|to)\s+" + PLACE
        ),
    ),
    ("employer", re.compile(r"^\s*(?:works|is working)\s+(?:at|for)\s+" + EMPLOYER)),
    ("allergy", re.compile(r"^\s*(?:is|'s)\s+(?:severely\s+|very\s+)?allergic to ([^,.;!?]+)")),
    ("", re.compile(r"^\s*(?:just\s+|recently\s+)?(?:passed away|died)\b")),
)
_BIRTHDAY = re.compile(r"^'s\s+(?:birthday|bday)\s+is\s+(.+)$", re.I)


def is_relation(phrase: str) -> bool:
    """Whether `phrase` names a relation ("sister", "best friend", "kids")."""
    return (
        singular(phrase.lower().removeprefix("ex-")) in _RELATIONS or phrase.lower() in _RELATIONS
    )


def _relation(word: str) -> str:
    word = word.lower()
    prefix = "ex-" if word.startswith("ex-") else ""
    return prefix + _RELATIONS.get(word.removeprefix("ex-"), word.removeprefix("ex-"))


def _person(relation: str, name: str = "") -> str:
    return f"person:{name.lower()}:{relation}" if name else f"person:{relation}"


def _relationship(
    subject: str, text: str, confidence: float = 0.85, op: str = "add", **attributes
) -> ExtractedItem:
    return ExtractedItem("relationship", subject, text, confidence, attributes=attributes, op=op)


def _mentions(text: str) -> list[tuple[str, re.Match]]:
    """The people named in `text` ("my brother Sam", "Sam is my brother"), with their subjects."""
    found = []
    for pattern in (_NAMED, _IS_MY, _HAVE_NAMED):
        for m in pattern.finditer(text):
            if is_name(m["name"]) and not any(
                m.start() < other.end() and other.start() < m.end() for _, other in found
            ):
                found.append((_person(_relation(m["rel"]), m["name"]), m))
    return found


def people(clause: Clause) -> list[ExtractedItem]:
    """Who is who ("my brother Sam", "I have a sister"), and what is said about them."""
    text, items = clause.text, []
    if m := _BROKE_UP.search(text):
        subject = _person(_relation(m["rel"]), m["name"] or "") if m["rel"] else ""
        return [_relationship(subject, third_person(m.group(0)), op="retract")]
    for subject, m in _mentions(text):
        relation, mod = _relation(m["rel"]), (m["mod"] or "").lower()
        items.append(
            _relationship(
                subject, f"User's {mod}{relation} is {m['name']}", relation=relation, name=m["name"]
            )
        )
        if m.re is not _HAVE_NAMED:
            items += _about(subject, text[m.end() :].lstrip(" ,"), clause)
    if not items and (m := _UNNAMED.search(text)):
        items += _about(_person(_relation(m["rel"])), text[m.end() :], clause)
    if not items and (m := _HAVE.search(text)):
        count, relation = m["count"].lower(), m["rel"].lower()
        said = f"User has {count} {(m['mod'] or '').lower()}{relation}"
        items.append(
            _relationship(
                _person(_relation(relation if relation in _RELATIONS else singular(relation))), said
            )
        )
    return items


def _about(subject: str, rest: str, clause: Clause) -> list[ExtractedItem]:
    """What the rest of the clause says about the person: their job, diet, home, employer,
    allergies, birthday, or that they died."""
    if m := _BIRTHDAY.search(rest):
        return _birthday(subject, m.group(1), clause)
    for topic, pattern in _ABOUT:
        if m := pattern.search(rest):
            text, attributes = with_absolute_dates(third_person(clause.text), clause)
            if topic == "allergy":
                topic = "allergy:" + singular(clean(m.group(1)).lower())
            return [
                _relationship(f"{subject}:{topic}" if topic else subject, text, 0.8, **attributes)
            ]
    return []


def _birthday(subject: str, when: str, clause: Clause) -> list[ExtractedItem]:
    found = first_date(clause, when)
    if found is None:
        return []
    owner = third_person(clause.text.split("'s birthday", 1)[0].split("'s bday", 1)[0])
    day = month_day_text(found.value)
    return [
        _relationship(
            f"{subject}:birthday",
            f"{owner}'s birthday is {day}",
            0.85,
            date=found.iso,
            month_day=f"{found.value:%m-%d}",
        )
    ]
