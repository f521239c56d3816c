"""Rules for who the user is: name, nationality, where they live (and moves), age, relationship
status, contact details, occupation and employer, with their retractions ("I quit my job at
Acme")."""

from __future__ import annotations

import re

from .common import EMPLOYER, IM, NAME, NATIONALITIES, PLACE, Clause, is_name
from .english import clean
from .items import ExtractedItem

_I = r"\b(?i:i|we)"
_FULL_NAME = r"(" + NAME + r")(?:\s+(" + NAME + r"))?"
_NAME_IS = re.compile(r"(?:\b(?i:my name is|my name's)|^(?i:name's))\s+" + _FULL_NAME + r"\b")
_I_AM_NAME = re.compile(
    r"^(?i:i'm|i am|im|this is)\s+" + _FULL_NAME + r"(?=\s*(?:$|,|\band\b|\bfrom\b|\bhere\b))"
)
_CALL_ME = re.compile(
    r"^(?i:(?:please\s+)?(?:just\s+)?call me|you can call me|i go by|(?:everyone|people|friends) call me)\s+("
    + NAME
    + r")\b"
)
_NATIONALITY = re.compile(
    r"^(?i:i'm|i am|im)\s+(?:an?\s+)?([A-Z][a-z]+)(?:\s+(?i:citizen))?\s*(?:$|,)"
)
_LIVE = re.compile(
    _I + r"(?i:\s+(?:currently\s+|now\s+|still\s+|also\s+|actually\s+)?(?:live|reside)"
    r"|(?:'m|\s+am|'re|\s+are)\s+(?:currently\s+|now\s+)?(?:living|based|located))\s+(?i:in)\s+"
    + PLACE
)
_MOVED = re.compile(
    _I
    + r"(?:'ve|\s+have)?\s+(?i:(?:just|recently|finally|also)\s+)?(?i:moved|relocated)(?:\s+(?i:back|over|here))?"
    r"(?:\s+(?i:from)\s+" + PLACE + r")?\s+(?i:to)\s+" + PLACE
)
_NOT_LIVE = re.compile(
    _I
    + r"(?i:\s+(?:don't|do not|no longer|no more)\s+live|\s+used to live|(?:'m|\s+am)\s+(?:no longer|not)\s+"
    r"(?:living|based)|\s+moved (?:away|out) (?:from|of))\s+(?i:in\s+)?" + PLACE
)
_FROM = re.compile(
    _I + r"(?i:'m|\s+am|\s+come|'re|\s+are)\s+(?i:originally\s+)?(?i:from)\s+" + PLACE
)
_GREW_UP = re.compile(
    _I + r"\s+((?i:grew up|was raised|was born and raised|was born))\s+(?i:in)\s+" + PLACE
)
_AGE = re.compile(
    r"\b(?:" + IM + r"|i am)\s+(\d{1,3})(?=\s*$|\s*,|\s+and\b|\s+(?:years?|yrs?)\s+old\b|\s+y/?o\b)"
    r"|\bi (?:just |recently )?turned (\d{1,3})\b(?!\s*(?:%|percent|minutes|hours|days|degrees))",
    re.I,
)
_STATUS = re.compile(
    r"\b(?:"
    + IM
    + r"|i am|(?:i|we) (?:just |recently )?got|we're|we are)\s+(?:now\s+|happily\s+|recently\s+)?"
    r"(married|engaged|divorced|single|separated|widowed)\b(?!-)",
    re.I,
)
_ADDRESS = re.compile(r"\bmy (?:home |postal |mailing )?address is (.+)", re.I)
_EMAIL = re.compile(r"\bmy e-?mail(?: address)? is (\S+@\S+\.\w+)", re.I)
_PHONE = re.compile(r"\bmy (?:phone|cell|mobile)(?: number)? is (\+?\d[\d\s().-]{5,}\d)", re.I)


def _fact(subject: str, text: str, confidence: float = 0.85, **attributes) -> ExtractedItem:
    return ExtractedItem("fact", subject, text, confidence, attributes=attributes)


def _retract(subject: str, text: str, kind: str = "fact") -> ExtractedItem:
    return ExtractedItem(kind, subject, text, 0.85, op="retract")


def names(clause: Clause) -> list[ExtractedItem]:
    """ "My name is Alex", "I'm Alex" (at the start of a clause), "call me Al" (a preferred name)."""
    items = []
    m = _NAME_IS.search(clause.text) or _I_AM_NAME.search(clause.text)
    if m and is_name(m.group(1)) and not re.search(r"\bnot\b", clause.text[: m.start(1)], re.I):
        name = m.group(1) + (f" {m.group(2)}" if m.group(2) and is_name(m.group(2)) else "")
        items.append(_fact("name", f"User's name is {name}", 0.9, name=name))
    if (m := _CALL_ME.search(clause.text)) and is_name(m.group(1)):
        items.append(
            _fact("preferred name", f"User prefers to be called {m.group(1)}", 0.9, name=m.group(1))
        )
    if (m := _NATIONALITY.search(clause.text)) and m.group(1) in NATIONALITIES:
        items.append(_fact("nationality", f"User is {m.group(1)}", 0.85))
    return items


def places(clause: Clause) -> list[ExtractedItem]:
    """Where the user lives ("I live in", "I moved to"), no longer lives, and comes from."""
    text = clause.text
    if m := _NOT_LIVE.search(text):
        return [_retract("location", f"User no longer lives in {clean(m.group(1))}")]
    items = []
    if m := _MOVED.search(text) or _LIVE.search(text):
        items.append(_fact("location", f"User lives in {clean(m.group(m.lastindex))}"))
    if m := _FROM.search(text):
        items.append(_fact("hometown", f"User is from {clean(m.group(1))}"))
    elif m := _GREW_UP.search(text):
        items.append(_fact("hometown", f"User {m.group(1).lower()} in {clean(m.group(2))}"))
    return items


def personal(clause: Clause) -> list[ExtractedItem]:
    """Age, relationship status and contact details."""
    text, items = clause.text, []
    if (
        (m := _AGE.search(text))
        and 5 <= int(m.group(1) or m.group(2)) <= 120
        and not re.search(r"\bnot\b", text, re.I)
    ):
        age = int(m.group(1) or m.group(2))
        items.append(
            _fact("age", f"User is {age} years old", age=age, as_of=clause.today.isoformat())
        )
    if (m := _STATUS.search(text)) and not re.search(
        r"\bnot\b|\bno longer\b", text[: m.start(1)], re.I
    ):
        items.append(_fact("relationship status", f"User is {m.group(1).lower()}"))
    if m := _ADDRESS.search(text):
        items.append(_fact("address", f"User's address is {clean(m.group(1))}", 0.9))
    if m := _EMAIL.search(text):
        items.append(_fact("email", f"User's email is {clean(m.group(1))}", 0.9))
    if m := _PHONE.search(text):
        items.append(_fact("phone", f"User's phone number is {clean(m.group(1))}", 0.9))
    return items


_ROLES = (
    r"developer|engineer|designer|manager|teacher|professor|lecturer|doctor|physician|surgeon|dentist|nurse|"
    r"pharmacist|scientist|student|writer|author|editor|lawyer|attorney|paralegal|analyst|consultant|architect|"
    r"researcher|programmer|artist|musician|chef|cook|baker|accountant|founder|co-founder|ceo|cto|cfo|coo|"
    r"photographer|journalist|pilot|mechanic|electrician|plumber|carpenter|firefighter|police officer|farmer|"
    r"librarian|therapist|psychologist|psychiatrist|veterinarian|vet|translator|recruiter|marketer|entrepreneur|"
    r"freelancer|intern|administrator|technician|economist|mathematician|physicist|chemist|biologist|actor|"
    r"actress|dancer|singer|tutor|coach|trainer|secretary|receptionist|banker|investor|sysadmin|postdoc|"
    r"product owner|scrum master|director|professional|specialist|officer|paramedic|social worker|illustrator|"
    r"animator|copywriter|data scientist|statistician|economist|historian|professor|teaching assistant"
)
_NOT_A_JOB = {
    "good", "bad", "great", "terrible", "awful", "decent", "better", "best", "worse", "worst", "lousy", "poor",
    "amazing", "big", "huge", "total", "complete", "real", "natural", "born", "horrible", "excellent", "only",
    "fantastic", "wannabe", "aspiring", "former", "ex", "future", "failed", "frustrated", "amateur", "hobby",
}  # fmt: skip
ROLE = r"((?:[\w-]+\s+){0,3}?(?:" + _ROLES + r"))"
_OCCUPATION = re.compile(
    r"\b(?i:i'm|i am|im|i work as|i'm working as|i am working as)\s+(?:" + NAME + r",\s+)?"
    r"(?i:(?:currently|now|also|actually)\s+)?((?i:a|an|the))\s+" + "(?i:" + ROLE + r")\b"
    r"(?:\s+(?i:at|for|with)\s+" + EMPLOYER + r")?"
)
_AS_ROLE = re.compile(
    r"^(?i:i|we)\s+(?i:work|started|joined|have been working|have worked|am working|am employed|was hired)"
    r".*?\s(?i:as)\s+"
    r"(?i:(a|an))\s+(?i:" + ROLE + r")\b"
)
_SITUATION = re.compile(
    r"^(?:"
    + IM
    + r"|i am)\s+(?:now\s+|currently\s+)?(retired|self-employed|a freelancer|unemployed|between jobs"
    r"|out of work)\b",
    re.I,
)
_WORKS_AT = re.compile(
    _I
    + r"\s+(?i:(?:currently|now|still|also)\s+)?(?i:work (?:at|for)|(?:just\s+|recently\s+)?(?:started (?:a new job "
    r"|working |my new job )?at|started working for|got a (?:new )?job (?:at|with)|got hired (?:at|by))|(?:am|'m) "
    r"(?:employed|working) (?:at|by|for))\s+" + EMPLOYER
)
_WORKS_IN = re.compile(
    r"^(?i:i|we) (?:currently |now )?(work in|teach) (?!(?:a|an|the|my|our|him|her|them|people|kids|children)\b)"
    r"([a-z][a-z -]+)$"
)
_NOT_ROLE = re.compile(
    r"\b(?i:(?:i'm|i am|im)\s+(?:no longer|not)|i used to be|i stopped being|i quit being)\s+(?i:(a|an))\s+(?i:"
    + ROLE
    + r")\b"
)
_QUIT = re.compile(
    r"\b(?i:i|we)\s+(?i:(?:just|recently|finally)\s+)?(?i:quit|left|resigned from|lost) (?i:my (?:job|position|role)"
    r")(?:\s+(?i:at|with)\s+" + EMPLOYER + r")?"
)
_NO_LONGER_AT = re.compile(
    r"\b(?i:i|we)(?i:\s+(?:just\s+)?quit|\s+resigned from|\s+(?:no longer|don't|do not) work (?:at|for)|(?:'m|\s+am) "
    r"no longer (?:working )?(?:at|with|for|employed (?:at|by)))\s+" + EMPLOYER
)
_LAID_OFF = re.compile(
    r"\b(?i:i)\s+(?i:was|got|have been|'ve been|just got)\s+(?i:laid off|let go|fired|made redundant)"
    r"(?:\s+(?i:from|by|at)\s+" + EMPLOYER + r")?"
)
_RETIRED = re.compile(
    r"\b(?i:i)\s+(?i:just\s+|finally\s+)?(?i:retired)(?:\s+(?i:from)\s+" + EMPLOYER + r")?"
)


def work(clause: Clause) -> list[ExtractedItem]:
    """What the user does and where: "I'm a backend developer at Acme", "I work for Google"."""
    text, items = clause.text, []
    m = _OCCUPATION.search(text) or _AS_ROLE.search(text)
    if m and not _NOT_A_JOB.intersection(m.group(2).lower().split()[:-1]):
        role = clean(m.group(2))
        items.append(_fact("occupation", f"User is {m.group(1).lower()} {role}"))
        if m.re is _OCCUPATION and m.group(3):
            items.append(_employer(clean(m.group(3)), student=role.lower().endswith("student")))
    elif m := _SITUATION.search(text):
        situation = m.group(1).lower()
        subject = "occupation" if situation == "retired" else "employer"
        items.append(
            _fact(subject, f"User is {'self-employed' if 'free' in situation else situation}")
        )
    if m := _WORKS_AT.search(text):
        items.append(_employer(clean(m.group(1))))
    elif m := _WORKS_IN.search(text):
        verb = "works in" if m.group(1) == "work in" else "teaches"
        items.append(_fact("occupation", f"User {verb} {clean(m.group(2))}"))
    elif re.search(r"\bi work for myself\b", text, re.I):
        items.append(_fact("employer", "User is self-employed"))
    return items


def _employer(name: str, *, student: bool = False) -> ExtractedItem:
    if student:
        return _fact("school", f"User studies at {name}")
    return _fact("employer", f"User works at {name}")


def work_ended(clause: Clause) -> list[ExtractedItem]:
    """ "I quit my job at Acme", "I was laid off", "I'm not a teacher any more", "I retired"."""
    text, items = clause.text, []
    if m := _NOT_ROLE.search(text):
        items.append(
            _retract("occupation", f"User is no longer {m.group(1).lower()} {clean(m.group(2))}")
        )
    if m := _NO_LONGER_AT.search(text) or _QUIT.search(text) or _LAID_OFF.search(text):
        lost = re.search(r"\b(?:lost|laid off|let go|fired|redundant)\b", m.group(0), re.I)
        employer = clean(m.group(1) or "")
        fallback = "User lost their job" if lost else "User left their job"
        items.append(
            _retract("employer", f"User no longer works at {employer}" if employer else fallback)
        )
    elif m := _RETIRED.search(text):
        employer = clean(m.group(1) or "")
        items.append(
            _retract("employer", f"User retired from {employer}" if employer else "User retired")
        )
        items.append(_fact("occupation", "User is retired"))
    return items
