"""EXTRACT offline: memories from common English statements, by rules.

A message is split into sentences and clauses. Questions, hypotheticals ("if I were vegetarian") and
reported speech ("my mum thinks I'm too thin") state nothing about the user; modal clauses ("I might
move to Berlin") give only instructions. Each remaining clause goes through the topic rules
(profile, food and tastes, people, projects and events, work: tools, problems, goals and the business,
instructions and terms). "Remember that ..."
pins what it says; "forget ..." gives op="forget" items; "I no longer ..." and the like give
op="retract" items.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from . import instructions, people, plans, preferences, profile, work
from .common import Clause, is_name, with_absolute_dates
from .english import clean, normalize, third_person
from .items import ExtractedItem, fingerprint, unique

Rule = Callable[[Clause], list[ExtractedItem]]

STATEMENT_RULES: tuple[Rule, ...] = (
    profile.names,
    profile.places,
    profile.personal,
    profile.work_ended,
    profile.work,
    preferences.diet,
    preferences.allergies,
    preferences.foods,
    preferences.tastes,
    people.people,
    plans.birthday,
    plans.stays,
    instructions.terms,
    work.work,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_ABBREVIATION = re.compile(
    r"\b(?:mr|mrs|ms|dr|st|jr|sr|prof|vs|etc|e\.g|i\.e|approx|inc|ltd|mt)\.$", re.I
)
_REQUEST_SPLIT = re.compile(
    r"(?:,\s*|\s+and\s+)(?:please\s+)?(?=(?:remember|forget|note|keep in mind)\b)", re.I
)
_PRONOUN = r"(?:i|i'm|i've|i'd|i'll|my|we|we're|we've|our)\b(?!\s+(?:are|were)\b)"
_CLAUSE_SPLIT = re.compile(
    r"\s*;\s*|\s*,?\s+(?:but|and|so|because|although|though|while|whereas|plus|since)\s+(?="
    + _PRONOUN
    + r")|,\s+(?="
    + _PRONOUN
    + r")",
    re.I,
)
_ELIDED = re.compile(r",?\s+and\s+(?=(?:work|live|love|like|enjoy|hate|prefer|am|have)\b)", re.I)
_FILLER = re.compile(
    r"^(?:and|but|so|also|oh|well|honestly|actually|btw|by the way|fyi|just so you know|so you know|for the record|"
    r"for context|ps|p\.s\.|anyway|ok|okay|yes|yeah|no|hi|hello|hey)\b[,:]?\s+",
    re.I,
)
_POLITE = r"(?:please\s+|(?:can|could|would|will) you(?:\s+please)?\s+|and\s+)?"
_REMEMBER = re.compile(
    r"^"
    + _POLITE
    + r"(?:remember|note|keep in mind|don't forget|do not forget|never forget|make a note|take note)"
    r"\b[,:]?\s*(?:that\s+|this:\s*)?(?P<what>.*?)[.!?]*$",
    re.I,
)
_FORGET = re.compile(
    r"^"
    + _POLITE
    + r"(?:forget|stop remembering|(?:erase|delete|remove)(?=\s+(?:what you know|everything|the memory|"
    r"the fact|what i (?:said|told you))))\b[,:]?\s*(?P<what>.*?)[.!?]*$",
    re.I,
)
_QUESTION_START = re.compile(
    r"^(?:do(?!\s+not\b)|does|did|can|could|would|should|will|is|are|am|was|were|have|has|what|why|how|where|who|which|"
    r"whose|whom|shall|may)\b",
    re.I,
)
_HYPOTHETICAL = re.compile(
    r"\b(?:if|suppose|supposing|imagine|pretend|hypothetically|what if|let's say|assuming|in case|unless|as if|"
    r"wish|wonder|whether)\b",
    re.I,
)
_MODAL = re.compile(
    r"\b(?:would|could|might|(?-i:may)(?!\s+\d)|should|shall|maybe|perhaps|probably|possibly|hopefully|someday|one day|"
    r"wanna|gonna|"
    r"want to|wants to|hope to|hoping to|plan to|planning to|intend to|dream of|considering|thinking about|"
    r"thinking of|trying to|try to|tempted to)\b|\b(?:i|we)'d\b|\bgoing to (?:be|become|start|try|get|move)\b",
    re.I,
)
_REPORTED = re.compile(
    r"\b(?:(?i:he|she|they|you|people|everyone|someone|somebody|(?:my|his|her|their) [a-z]+)|[A-Z][a-z]+)"
    r"\s+(?i:thinks?|"
    r"thought|says?|said|assumes?|assumed|believes?|believed|claims?|claimed|told me|insists?)\b",
)
_RETRACTIONS = (
    (re.compile(r"^(?:i|we) no longer (?P<rest>.+?)(?: any ?more)?$", re.I), "I "),
    (re.compile(r"^(?:i|we) (?:don't|do not) (?P<rest>.+?) any ?more$", re.I), "I "),
    (re.compile(r"^(?:i|we) used to (?P<rest>.+)$", re.I), "I "),
    (
        re.compile(r"^(?:i'm|i am|we're|we are) (?:no longer|not) (?P<rest>.+?) any ?more$", re.I),
        "I'm ",
    ),
    (re.compile(r"^(?:i'm|i am|we're|we are) no longer (?P<rest>.+)$", re.I), "I'm "),
)
_STOPPED = re.compile(
    r"^(?:i|we) (?:have |'ve )?(?P<verb>stopped|quit|gave up|given up) (?P<rest>\w+ing\b.*)$", re.I
)
_VAGUE = re.compile(r"\b(?:it|that|this|them|you|so|much|there|here)$", re.I)


def extract_with_rules(text: str, *, now: datetime | None = None) -> list[ExtractedItem]:
    """Memories stated in common English, with dates resolved against `now` (the message's time; the
    current time by default). Questions, hypotheticals and other people's statements give none."""
    now = now or datetime.now(UTC)
    items: list[ExtractedItem] = []
    for sentence in sentences(text):
        items.extend(_sentence_items(sentence, now))
    return unique(items)


def sentences(text: str) -> list[str]:
    """The sentences of a message ("Dr. Lee" does not end one); "..., and remember that X" starts a
    sentence of its own."""
    parts = []
    for line in map(normalize, text.splitlines()):
        start = 0
        for end in _SENTENCE_END.finditer(line):
            if not _ABBREVIATION.search(line, 0, end.start()):
                parts.append(line[start : end.start()])
                start = end.end()
        parts.append(line[start:])
    return [p.strip() for sentence in parts for p in _REQUEST_SPLIT.split(sentence) if p.strip()]


def clauses(sentence: str) -> list[str]:
    """The clauses of a sentence, fillers ("so", "honestly,") removed; "I live in Rome and work at
    Acme" gives "I live in Rome" and "I work at Acme"."""
    sentence = _ELIDED.sub(" ; I ", sentence.rstrip(".!"))
    result: list[str] = []
    for part in _CLAUSE_SPLIT.split(sentence):
        part = part.strip(" ,")
        while (stripped := _FILLER.sub("", part)) != part:
            part = stripped
        # "Emma, my niece, is ...": one clause
        if result and is_name(result[-1]) and re.match(r"my\b", part, re.I):
            result[-1] = f"{result[-1]}, {part}"
        elif part:
            result.append(part)
    return result


def _sentence_items(sentence: str, now: datetime) -> list[ExtractedItem]:
    if m := _REMEMBER.match(sentence):
        return _pinned(m["what"], now) if _polite_or_statement(sentence) else []
    if m := _FORGET.match(sentence):
        return _forgotten(m["what"], now) if _polite_or_statement(sentence) else []
    if sentence.endswith("?") or _QUESTION_START.match(sentence) or _HYPOTHETICAL.search(sentence):
        return []
    return [item for clause in clauses(sentence) for item in clause_items(Clause(clause, now))]


def _polite_or_statement(sentence: str) -> bool:
    """ "Remember that ...?" is a question; "Can you remember that ...?" a request."""
    return not sentence.endswith("?") or bool(
        re.match(r"(?:can|could|would|will) you\b", sentence, re.I)
    )


def clause_items(clause: Clause) -> list[ExtractedItem]:
    """What one clause says. Modal clauses and reported speech give instructions only."""
    items = instructions.instructions(clause)
    if _REPORTED.search(clause.text):
        return items
    goals = work.goals(clause)  # "I'm trying to ..." is modal in form, and a goal
    if _MODAL.search(clause.text):
        return items + goals
    for rule in STATEMENT_RULES:
        items += rule(clause)
    # "I need to finish the slides by Thursday" is the project's deadline, not a goal besides
    items += plans.projects(clause) or goals or plans.events(clause)
    if not any(item.op == "retract" for item in items):
        items += _retraction(clause)
    return items


def _retraction(clause: Clause) -> list[ExtractedItem]:
    """ "I no longer play tennis", "I'm not married any more", "I quit smoking": what it ends is what
    the positive statement ("I play tennis") would have been, when the rules know it; else a fact,
    subject ""."""
    if m := _STOPPED.search(clause.text):
        return [
            ExtractedItem(
                "fact", "", f"User {m['verb'].lower()} {clean(m['rest'])}", 0.8, op="retract"
            )
        ]
    for pattern, positive in _RETRACTIONS:
        if (
            (m := pattern.search(clause.text))
            and len(m["rest"].split()) >= 1
            and not _VAGUE.search(m["rest"])
        ):
            ended = _statement_items(Clause(positive + m["rest"], clause.now))
            said = third_person(positive + m["rest"])
            said = (
                re.sub(r"^User is ", "User is no longer ", said)
                if positive == "I'm "
                else "User no longer " + said[5:]
            )
            kind, subject = (ended[0].kind, ended[0].subject) if ended else ("fact", "")
            return [ExtractedItem(kind, subject, said, 0.8, op="retract")]
    return []


def _statement_items(clause: Clause) -> list[ExtractedItem]:
    items = [item for rule in STATEMENT_RULES for item in rule(clause)]
    return [
        item
        for item in items + (plans.projects(clause) or plans.events(clause))
        if item.op == "add"
    ]


def _pinned(what: str, now: datetime) -> list[ExtractedItem]:
    """ "Remember that X": what X states, pinned; or X itself as a pinned note."""
    what = re.sub(r"^to\s+", "", clean(what), flags=re.I)
    found = [item for clause in clauses(what) for item in clause_items(Clause(clause, now))]
    if not found and len(what.split()) >= 3 and not _HYPOTHETICAL.search(what):
        text, attributes = _dated(third_person(what), now)
        found = [
            ExtractedItem(
                "fact", "note:" + fingerprint(text)[:16], text, 0.95, attributes=attributes
            )
        ]
    return [
        ExtractedItem(
            i.kind,
            i.subject,
            i.text,
            max(i.confidence, 0.95),
            True,
            i.attributes,
            i.op,
            i.message_id,
        )
        for i in found
    ]


def _dated(text: str, now: datetime) -> tuple[str, dict]:
    return with_absolute_dates(text, Clause(text, now))


_FORGET_LEAD = re.compile(
    r"^(?:(?:what|everything|all) (?:i (?:just |earlier |once )?(?:said|told you|mentioned)|you know|you remember) "
    r"(?:about|regarding|of)\s+|"
    r"(?:that |the fact that )?i (?:said|told you|mentioned)(?: that)?\s+|the memory (?:about|of|that)\s+|"
    r"about\s+|that\s+)",
    re.I,
)
_FORGET_WHAT = re.compile(
    r"(?:about|that|my|our|what|where|when|how|everything|all|me|i|the fact|the memory|you know)\b",
    re.I,
)
_FORGET_NOUNS = (
    (r"(?:my )?(?:home |postal )?address", "fact", "address", "User's address"),
    (r"(?:my )?(?:first |full )?name", "fact", "name", "User's name"),
    (r"(?:my )?(?:birthday|birth date|date of birth)", "fact", "birthday", "User's birthday"),
    (r"(?:my )?age|how old i am", "fact", "age", "User's age"),
    (r"(?:my )?(?:location|city|home)|where i (?:live|am based|'m based)", "fact", "location", "User's location"),
    (r"(?:my )?(?:employer|company|workplace)|where i work", "fact", "employer", "User's employer"),
    (r"(?:my )?(?:job|occupation|profession)|what i do(?: for a living)?", "fact", "occupation", "User's occupation"),
    (r"(?:my )?diet|what i eat", "preference", "diet", "User's diet"),
    (r"(?:my )?(?:e-?mail|email address)", "fact", "email", "User's email"),
    (r"(?:my )?(?:phone|number|phone number)", "fact", "phone", "User's phone number"),
    (r"(?:my )?allerg(?:y|ies)|what i'm allergic to", "preference", "", "User is allergic"),
    (r"everything(?: about me)?|all of (?:it|that)|all my data|me", "fact", "*", "Everything about the user"),
)  # fmt: skip


def _forgotten(what: str, now: datetime) -> list[ExtractedItem]:
    """ "Forget that I live in Paris" -> op="forget", "User lives in Paris" (subject "location");
    "forget my address" -> subject "address", text "User's address"; other requests keep their
    words. "Forget the API, let's talk about food" is a figure of speech, not a request: nothing is
    erased."""
    if not _FORGET_WHAT.match(what):
        return []
    what = _FORGET_LEAD.sub("", re.split(r"[,;]|\s+because\s+", clean(what))[0])
    if not what or re.fullmatch(r"(?:it|this|that|about it|them)", what, re.I):
        return []
    for pattern, kind, subject, text in _FORGET_NOUNS:
        if re.fullmatch(pattern, what, re.I):
            return [ExtractedItem(kind, subject, text, 0.9, op="forget")]
    found = [item for clause in clauses(what) for item in _statement_items(Clause(clause, now))]
    if found:
        return [ExtractedItem(i.kind, i.subject, i.text, 0.9, op="forget") for i in found]
    if m := re.fullmatch(r"(?:my|our) (.+)", what, re.I):
        kind = "relationship" if people.is_relation(m.group(1)) else "fact"
        return [ExtractedItem(kind, "", f"User's {clean(m.group(1))}", 0.9, op="forget")]
    return [ExtractedItem("fact", "", third_person(what), 0.9, op="forget")]
