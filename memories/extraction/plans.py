"""Rules for time: the user's birthday, projects (with status and deadlines) and events, every date
made absolute against the message's time ("due next Friday" -> {"date": "2026-03-20"})."""

from __future__ import annotations

import re
from datetime import date

from .common import PLACE, Clause, first_date, with_absolute_dates
from .dates import month_day_text
from .english import clean, key, third_person
from .items import ExtractedItem

_EPHEMERAL = re.compile(
    r"^(?:(?:a|an|the|my|our|some|this)\s+)?(?:it|this|that|them|dinner|lunch|breakfast|coffee|tea|email|e-mail|"
    r"message|text|reply|comment|note|tweet|post|list|homework|laundry|dishes|shopping|chores|meal|snack|drink|"
    r"nothing|something|stuff|things|day|week|weekend|tonight|today|tomorrow)\b",
    re.I,
)
_OWN_BIRTHDAY = re.compile(
    r"\b(?:my (?:birthday|bday|b-day)(?:'s| is| was| falls on)|it's my (?:birthday|bday)|i was born on|"
    r"today is my birthday)"
    r"\s*(?P<when>.*)$",
    re.I,
)
_PROJECT = re.compile(
    r"^(?:i'm|i am|we're|we are|i've been|we've been|i have been|we have been)\s+(?:currently\s+|now\s+|still\s+|"
    r"also\s+|"
    r"busy\s+|actively\s+)?(?P<verb>working on|building|developing|writing|migrating|designing|creating|launching|"
    r"organi[sz]ing|preparing|learning|studying|researching|refactoring|rewriting|training for|planning)\s"
    r"+(?P<what>.+)$",
    re.I,
)
_MY_PROJECT = re.compile(
    r"\bmy (?:current |main |side |new |latest |big )?project is (?P<what>.+)$", re.I
)
_STARTED = re.compile(
    r"^(?:i|we) (?:just |recently )?(?:started|began|kicked off) (?:working on |building |writing |a (?:new )?project "
    r"(?:called|named) )(?P<what>.+)$",
    re.I,
)
_DONE = re.compile(
    r"^(?:i|we) (?:just |finally |already |have |'ve )*(?P<verb>finished|completed|shipped|launched|released|"
    r"wrapped up|submitted|delivered|published) (?P<what>.+)$",
    re.I,
)
_STATUS = re.compile(
    r"^(?:the |my |our )(?P<what>.+?) (?:is|was|has been) (?:finally |now |officially )?(?P<status>done|finished|"
    r"complete|completed|shipped|live|launched|released|on hold|paused|cancelled|canceled)\b",
    re.I,
)
_STATUSES = {
    "on hold": "paused",
    "paused": "paused",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}
_STOPPED = re.compile(
    r"^(?:(?:i|we)(?:'m| am|'re| are) (?:no longer|not) working on (?P<a>.+?)(?: any ?more)?|(?:i|"
    r"we) (?:stopped working on|"
    r"gave up on|abandoned|cancelled|canceled|shelved) (?P<b>.+))$",
    re.I,
)
_DUE = re.compile(
    r"^(?!(?:i|i'm|we|we're)\b)(?:the |my |our )?(?P<what>.+?) (?:is|are) (?:due|scheduled|planned|set|slated)\b|"
    r"^(?:the |my |our )?deadline "
    r"(?:for|of|on) (?P<what2>.+?) is\b|^(?!(?:i|i'm|we|we're)\b)(?:the |my |our )?(?P<what3>.+?) deadline is\b|"
    r"^(?!(?:i|i'm|we|we're)\b)(?:the |my |our )?(?P<what4>.+?) "
    r"(?:launches|ships|goes live|is launching|is shipping|is going live|will launch|will ship|will go live)\b",
    re.I,
)
_MUST = re.compile(
    r"^(?:i|we) (?:need to|have to|must|'ve got to|have got to|got to|'m supposed to|am supposed to|'re supposed to) "
    r"(?:finish|submit|ship|deliver|complete|hand in|send|launch|release|present|file|pay|renew|get) (?P<what>.+?) "
    r"(?:by|before|until|on|no later than)\b",
    re.I,
)
_EVENT_NOUNS = (
    r"appointment|meeting|interview|exams?|test|flight|trip|date|party|wedding|concert|game|match|conference|"
    r"presentation|call|surgery|operation|check-?up|class|lecture|review|demo|recital|performance|show|talk|"
    r"workshop|vacation|holidays?|reunion|ceremony|graduation|funeral|race|marathon|hearing|session|shift|visit|"
    r"anniversary|retreat|course|festival|gig|dinner|lunch|move|defen[cs]e|viva|vaccination|scan|audition|hackathon"
)
_HAVE_EVENT = re.compile(
    r"^(?:i|we) (?:have|'ve got|have got|got)\s+(?:an?\s+|my\s+|the\s+|our\s+|another\s+)?(?P<what>(?:[\w'-]+\s+){0,3}?"
    r"(?:" + _EVENT_NOUNS + r"))\b",
    re.I,
)
_MY_EVENT = re.compile(
    r"^(?:my|our|the)\s+(?P<what>(?:[\w'-]+\s+){0,3}?(?:"
    + _EVENT_NOUNS
    + r")(?:\s+(?:to|from|with|in|at|for)\s+"
    r"[\w'-]+)?)\s+(?:is|are|was|starts|begins|will be)\b",
    re.I,
)
_GOING = re.compile(
    r"^(?:i'm|i am|we're|we are)\s+(?P<what>(?:flying|going|travell?ing|driving|heading|leaving|moving|visiting|"
    r"starting|"
    r"attending|getting married|running|hosting|celebrating|seeing|meeting|taking)\b.*)$",
    re.I,
)
_WILL = re.compile(
    r"^(?:i|we) (?:will |'ll )?(?P<what>(?:start|begin|fly|leave|travel|move|graduate|retire|get married|turn|"
    r"defend)\b.*)$",
    re.I,
)
_HAPPENED = re.compile(
    r"^(?:i|we) (?:just |finally )?(?P<what>(?:got (?:married|engaged|promoted|divorced|a new job|a (?:dog"
    r"|cat|puppy|kitten))"
    r"|graduated|ran (?:a|the|my first) \w+|won|adopted|bought (?:a|our|my|the) (?:house|home|car|flat|apartment)"
    r"|had (?:a baby|surgery|an operation)|gave birth|passed)\b.*)$",
    re.I,
)
_MOVING_TO = re.compile(r"^(?i:i'm|i am|we're|we are) (?i:moving|relocating) (?i:to) " + PLACE)


def _event(what: str, clause: Clause) -> ExtractedItem:
    text, attributes = with_absolute_dates(third_person(clause.text), clause)
    return ExtractedItem(
        "event", "event:" + key(_without_dates(what, clause)), text, 0.8, attributes=attributes
    )


def _without_dates(text: str, clause: Clause) -> str:
    """`text` up to its first date, without a dangling preposition ("start my job on")."""
    found = first_date(clause, text)
    text = text[: found.start] if found else text
    return re.sub(
        r"(?:\s+(?:on|by|at|in|for|from|until|before|after|this|next|last|the))+\s*$",
        "",
        text,
        flags=re.I,
    )


_STAY = re.compile(
    r"^(?i:i'm|i am|we're|we are)\s+(?i:currently\s+|now\s+)?(?P<how>(?i:in|staying in|based in|working "
    r"from|visiting|living in|at))\s+" + PLACE + r"\s+(?i:until|till|through)\s+(?P<when>.+)$"
)
_OFF_UNTIL = re.compile(
    r"^(?:i'm|i am|we're|we are)\s+(?P<what>(?:off|away|on (?:leave|holiday|vacation|parental leave)|"
    r"out of (?:the )?office|travell?ing|not drinking|off sugar|on a diet)\b.*?)\s+(?:until|till)\s+"
    r"(?P<when>.+)$",
    re.I,
)


def stays(clause: Clause) -> list[ExtractedItem]:
    """What is true only for a while: "I'm in Lisbon until Friday", "I'm on leave until May 3rd":
    {"until": ISO date} in its attributes, so that it is not used after that day."""
    m = _STAY.search(clause.text) or _OFF_UNTIL.search(clause.text)
    found = m and first_date(Clause(m["when"], clause.now))
    if not found or found.value < clause.today:
        return []
    text, dated = with_absolute_dates(third_person(clause.text), clause)
    subject = "whereabouts" if m.re is _STAY else "away:" + key(m["what"], 3)
    return [
        ExtractedItem("fact", subject, text, 0.85, attributes={"until": found.value.isoformat()})
    ]


def events(clause: Clause) -> list[ExtractedItem]:
    """Things that happen on a date: "I have a dentist appointment tomorrow", "my wedding is on June
    12th", "I'm flying to Tokyo next Friday", "we got married last June"; and "I'm moving to
    Berlin"."""
    found = first_date(clause)
    if _MOVING_TO.search(clause.text):
        return [_event("move", clause)]
    if not found:
        return []
    for pattern in (_HAVE_EVENT, _MY_EVENT, _HAPPENED, _GOING, _WILL):
        if (m := pattern.search(clause.text)) and key(_without_dates(m["what"], clause)):
            return [_event(m["what"], clause)]
    return []


def birthday(clause: Clause) -> list[ExtractedItem]:
    """The user's own birthday: "my birthday is on May 5th", "it's my birthday today", "I was born
    on 12 March 1990". Its text says the day (and the year when given); attributes hold the next
    one."""
    m = _OWN_BIRTHDAY.search(clause.text)
    found = m and first_date(Clause(m["when"] or "today", clause.now))
    if not found:
        return []
    day, year = found.value, re.search(r"\b\d{4}\b", m["when"] or "")
    text = f"User's birthday is {month_day_text(day)}" + (f", {day.year}" if year else "")
    attributes = {
        "month_day": f"{day:%m-%d}",
        "date": _next_occurrence(day, clause.today).isoformat(),
    }
    if year:
        attributes["birth_date"] = day.isoformat()
    return [ExtractedItem("fact", "birthday", text, 0.9, attributes=attributes)]


def _next_occurrence(day: date, today: date) -> date:
    for year in range(today.year, today.year + 5):
        try:
            candidate = day.replace(year=year)
        except ValueError:  # February 29th
            continue
        if candidate >= today:
            return candidate
    return day


def _what(m: re.Match) -> str:
    return next(value for name, value in m.groupdict().items() if name.startswith("what") and value)


def _project_key(what: str, clause: Clause) -> str:
    what = _without_dates(what, clause)
    if named := re.search(r"\b(?:called|named)\s+(.+)$", what, re.I):
        what = named.group(1)
    what = re.split(
        r"\s+(?:and|but|which|that|because|so|since|while|with my|with our)\s+",
        clean(what),
        maxsplit=1,
    )[0]
    return "project:" + key(re.sub(r"^(?:on|for|about)\s+", "", what, flags=re.I))


def _project(what: str, clause: Clause, op: str = "add", **attributes) -> list[ExtractedItem]:
    subject = _project_key(what, clause)
    if subject == "project:" or _EPHEMERAL.search(clean(what)):
        return []
    text, dated = with_absolute_dates(third_person(clause.text), clause)
    return [ExtractedItem("project", subject, text, 0.8, attributes={**attributes, **dated}, op=op)]


def projects(clause: Clause) -> list[ExtractedItem]:
    """Projects: what the user works on, finished or stopped, and deadlines ("the API launch is due
    next Friday", "I need to submit the report by the 12th")."""
    text = clause.text
    if m := _STOPPED.search(text):
        return _project(m["a"] or m["b"], clause, op="retract")
    if (
        (m := _DUE.search(text) or _MUST.search(text))
        and (found := first_date(clause))
        and found.start > m.start()
    ):
        # "the team meeting is scheduled for ..."
        if re.search(r"\b(?:" + _EVENT_NOUNS + r")$", _what(m), re.I):
            return [_event(_what(m), clause)]
        return _project(_what(m), clause)
    if m := _DONE.search(text):
        return _project(m["what"], clause, status="done")
    if m := _STATUS.search(text):
        return _project(m["what"], clause, status=_STATUSES.get(m["status"].lower(), "done"))
    if m := _PROJECT.search(text) or _MY_PROJECT.search(text) or _STARTED.search(text):
        # "working on Saturday"
        starts_with_date = (found := first_date(clause, m["what"])) and found.start == 0
        if not starts_with_date:
            return _project(m["what"], clause, status="active")
    return []
