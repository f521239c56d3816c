"""Rules for what the user works on and with: their tools and stack ("we're using FastAPI"), the
problems they are stuck on ("struggling with connection pooling"), their goals ("my goal is to ship
the beta"), and their business ("my startup builds invoicing software"). These are what a user
expects an assistant to know the next day: forgetting them is the "project reset" failure."""

from __future__ import annotations

import re

from .common import Clause
from .english import clean, key, third_person
from .items import ExtractedItem

_WE = r"(?:i'm|i am|we're|we are|i've been|we've been|i have been|we have been)"
_STILL = r"(?:still\s+|really\s+|currently\s+|constantly\s+|also\s+|now\s+|kind of\s+|a bit\s+)*"

# Problems: "struggling with X", "we keep hitting X", "I can't get X to work", "our X keeps crashing"
_STRUGGLING = re.compile(
    rf"(?:^|\b{_WE}\s+|\band\s+){_STILL}(?P<verb>struggling|having (?:a hard time|a tough time|trouble|issues|"
    r"problems|difficulties|difficulty)|stuck|fighting|battling|wrestling|dealing|running into (?:issues|problems|"
    r"trouble)|blocked|bogged down)\s+(?:with|on|by)\s+(?P<what>.+)$",
    re.I,
)
_KEEP_HITTING = re.compile(
    r"^(?:i|we)\s+(?:keep|kept|are constantly|'re constantly)\s+(?:hitting|getting|running into|seeing|"
    r"bumping into)\s+(?P<what>.+)$",
    re.I,
)
_CANT_GET = re.compile(
    r"^(?:i|we)\s+(?:can't|cannot|can not|couldn't|still can't)\s+(?:get|figure out|make|work out|fix|solve)\s+"
    r"(?P<what>.+)$",
    re.I,
)
_KEEPS_FAILING = re.compile(
    r"^(?:my|our|the)\s+(?P<what>.+?)\s+(?:keeps|kept|is constantly|are constantly|keep)\s+(?P<how>crashing|"
    r"failing|timing out|breaking|leaking(?: memory)?|dropping\s+\w+|hanging|running out of\s+\w+|running dry|"
    r"throwing\s+\w+|freezing|going down)\b",
    re.I,
)
_THE_PROBLEM = re.compile(
    r"^(?:the|my|our)\s+(?:main\s+|biggest\s+|big\s+|current\s+|real\s+)?(?:problem|issue|challenge|blocker|"
    r"bottleneck|headache|pain point)\s+(?:right now\s+|at the moment\s+)?(?:is|are)\s+(?P<what>.+)$",
    re.I,
)
_HAVE_BUG = re.compile(
    r"^(?:i|we)\s+(?:have|'ve got|have got|got|are seeing|'re seeing)\s+(?P<what>(?:a|an|some|this)\s+(?:[\w'-]+\s+)"
    r"{0,3}?(?:bug|leak|memory leak|issue|problem|outage|regression|race condition|deadlock|bottleneck|"
    r"performance problem)s?\b.*)$",
    re.I,
)

# Tools and stack: "we're using FastAPI", "I use Figma for mock-ups", "our backend is written in Go"
_USING = re.compile(
    rf"^(?:{_WE}|i|we|(?:my|our|the) team(?: is| are)?)\s+{_STILL}(?:mostly\s+|mainly\s+|only\s+)?"
    r"(?P<verb>using|uses|use|works with|work with|working with|relies on|"
    r"built (?:it |this |everything )?(?:with|on|in)|build (?:it |everything )?(?:with|on|in)|building (?:it )?"
    r"(?:with|on|in)|switched to|migrated to|migrating to|"
    r"(?:code|write|program|do) (?:everything |it all |most things |all of it |mostly )?in|"
    r"deploy (?:to|on)|host (?:it |everything )?on|rely on)\s+(?P<what>.+)$",
    re.I,
)
_STACK = re.compile(
    r"^(?:my|our)\s+(?:whole\s+|tech\s+|main\s+)?(?P<part>stack|tech stack|backend|back end|frontend|front end|"
    r"database|db|infra|infrastructure|api|app|service|server|servers|platform|pipeline|ci|mobile app|website|"
    r"site|codebase|monolith)\s+(?:is built (?:with|on|in)|is written in|is hosted on|lives on|runs on|run on|"
    r"uses|use|is|are)\s+(?P<what>.+)$",
    re.I,
)
# a tool looks like one: a capitalised name not at the start (FastAPI, Postgres), or a technical token
_TOOLISH = re.compile(
    r"\b(?:[A-Z][\w.+#-]*|[a-z]+[A-Z]\w*|\w+\.(?:js|py|io|net|rs)|c\+\+|c#|\w*\d\w*|vim|neovim|emacs|"
    r"postgres(?:ql)?|mysql|sqlite|redis|kafka|docker|kubernetes|k8s|terraform|python|rust|golang|java|kotlin|"
    r"swift|typescript|javascript|react|vue|django|flask|fastapi|rails|laravel|spring|graphql|aws|gcp|azure|"
    r"linux|excel|figma|notion|jira|slack|git|github|gitlab|celery|pandas|pytorch|tensorflow)\b"
)
_NOT_TOOLS = re.compile(
    r"^(?:the (?:bathroom|toilet|car|bus|train|gym|stairs|microwave|oven)|my (?:phone|car|hands|time)|it|this|"
    r"that|them|some help|a break)\b",
    re.I,
)

# The user's business: "my startup builds X", "I run a small bakery in York"
_OUR_BUSINESS_DOES = re.compile(
    r"^(?:my|our)\s+(?:(?:small|little|new|own|tiny|early-stage|two-person|\w+-person)\s+)*(?P<what>startup|company|"
    r"business|firm|agency|studio|lab|side hustle|nonprofit|non-profit|charity|shop|store|product|"
    r"consultancy|app)\s+(?P<verb>builds|makes|sells|does|offers|provides|develops|is building|is developing|"
    r"helps|creates|designs|is|automates|lets|turns|connects)\s+(?P<rest>.+)$",
    re.I,
)
_RUN_A_BUSINESS = re.compile(
    r"^(?:i|we)\s+(?:run|own|founded|co-founded|cofounded|started|have|manage)\s+(?:a|an|my own|our own|"
    r"the)\s+(?P<what>(?:[\w'-]+\s+){0,3}?(?:startup|company|business|bakery|shop|agency|studio|restaurant|café|"
    r"cafe|consultancy|practice|firm|store|podcast|blog|channel|newsletter|nonprofit|non-profit|charity|clinic|"
    r"salon|farm|brewery|gym|school|saas|app)\b.*)$",
    re.I,
)
_A_STARTUP = re.compile(
    r"^(?:i'm|i am|we're|we are)\s+(?:a|an)\s+(?P<what>(?:[\w'-]+\s+){0,3}?(?:startup|company|agency|studio|"
    r"team|consultancy)\b.+)$",
    re.I,
)

# Goals, said plainly (not "I might", "I'd love to"): "my goal is to X", "I'm trying to X"
_MY_GOAL = re.compile(
    r"^(?:my|our)\s+(?:main\s+|big\s+|long-term\s+|ultimate\s+|real\s+|current\s+|only\s+)?(?:goal|aim|"
    r"objective|target|mission|focus)\s+(?:for (?:this|next|the) (?:year|month|quarter|week)\s+|right now\s+|"
    r"this (?:year|month|quarter)\s+)?is\s+(?:to\s+)?(?P<what>.+)$",
    re.I,
)
_TRYING = re.compile(
    rf"^{_WE}\s+{_STILL}(?P<verb>trying|aiming|working hard|looking)\s+to\s+(?P<what>.+)$", re.I
)
_WANT_TO = re.compile(
    r"^(?:i|we)\s+(?:really\s+)?(?:want|need|plan|intend|aim|hope)\s+to\s+(?P<what>(?:learn|build|launch|ship|"
    r"finish|become|switch|migrate|grow|hire|raise|improve|reduce|cut|speed up|scale|automate|rewrite|"
    r"refactor|replace|pass|master|publish|open|start (?:a|my|our) (?:company|business|startup|podcast|blog|"
    r"channel))\b.+)$",
    re.I,
)
_NOT_A_GOAL = re.compile(
    r"\b(?:would|could|might|maybe|perhaps|someday|one day|if|unless)\b|'d\b", re.I
)
_TRIVIAL = re.compile(
    r"^(?:(?:get|find|figure out|decide|work out|remember)\s+)?(?:what|where|when|which|how)\b.{0,30}"
    r"(?:eat|cook|dinner|lunch|watch|wear|buy)\b|^(?:sleep|relax|eat|rest|chill|nap)\b",
    re.I,
)


def _item(kind: str, prefix: str, what: str, text: str, confidence: float = 0.8) -> ExtractedItem:
    return ExtractedItem(kind, f"{prefix}:{key(_head(what))}", text, confidence)


# "..., and struggling with ...": a second statement in the same clause
_AND_DOING = re.compile(r",?\s+and\s+(?=(?:\w+ly\s+)?\w+ing\b)", re.I)


def _head(what: str) -> str:
    """The thing itself, without what follows it ("FastAPI for our backend" -> "FastAPI",
    "Terraform last year" -> "Terraform")."""
    return re.split(
        r"\s+(?:for|because|since|so|which|that|when|while|but|as|to|in order to|at work|every|last|this|"
        r"these|next|all|since|now|today|lately|recently)\b",
        _AND_DOING.split(clean(what), maxsplit=1)[0],
        maxsplit=1,
    )[0]


def problems(clause: Clause) -> list[ExtractedItem]:
    """What the user is stuck on: 'We're using FastAPI and struggling with database connection
    pooling' -> "User is struggling with database connection pooling"."""
    text = clause.text
    if m := _STRUGGLING.search(text):
        what = clean(m["what"])
        verb = m["verb"].lower()
        said = f"User is {verb} {'with' if verb != 'blocked' else 'by'} {what}"
        if verb.startswith(("having", "running")):
            said = f"User is {verb} with {what}"
        return [_item("project", "problem", what, third_person(said))]
    for pattern in (_KEEP_HITTING, _CANT_GET, _HAVE_BUG):
        if m := pattern.search(text):
            return [_item("project", "problem", m["what"], third_person(text))]
    if m := _KEEPS_FAILING.search(text):
        return [_item("project", "problem", f"{m['what']} {m['how']}", third_person(text))]
    if (m := _THE_PROBLEM.search(text)) and len(m["what"].split()) >= 2:
        return [_item("project", "problem", m["what"], third_person(text))]
    return []


def tools(clause: Clause) -> list[ExtractedItem]:
    """The user's tools and stack: 'we're using FastAPI', 'our backend is written in Go', 'I use
    Figma for mock-ups'. Only what reads as a tool's name: "I use the bus" is not a stack."""
    text = clause.text
    m = _STACK.search(text)
    if m and _TOOLISH.search(m["what"]):
        # one per part: "our backend is now Rust" supersedes "our backend is written in Go"
        return [ExtractedItem("fact", f"stack:{key(m['part'], 2)}", third_person(text), 0.85)]
    text = _AND_DOING.split(text, maxsplit=1)[0]  # "using FastAPI and struggling with ..."
    m = _USING.search(text)
    if m and _TOOLISH.search(_head(m["what"])) and not _NOT_TOOLS.search(m["what"]):
        return [_item("fact", "tool", m["what"], third_person(text), 0.85)]
    return []


def business(clause: Clause) -> list[ExtractedItem]:
    """The user's business or startup and what it does: 'my startup builds invoicing software for
    dentists', 'I run a small bakery in York'."""
    text = clause.text
    for pattern in (_OUR_BUSINESS_DOES, _RUN_A_BUSINESS, _A_STARTUP):
        if pattern.search(text):
            return [ExtractedItem("project", "business", third_person(text), 0.85)]
    return []


def goals(clause: Clause) -> list[ExtractedItem]:
    """Goals the user states plainly: 'my goal is to ship the beta by May', "I'm trying to get my
    team to adopt TypeScript", 'I want to learn Rust'. "I might", "I'd love to" and small plans
    ("trying to decide what to cook") are not goals."""
    text = clause.text
    if _NOT_A_GOAL.search(text):
        return []
    for pattern in (_MY_GOAL, _TRYING, _WANT_TO):
        if (m := pattern.search(text)) and not _TRIVIAL.search(m["what"]):
            if len(key(m["what"]).split()) < 1:
                return []
            return [_item("project", "goal", m["what"], third_person(text))]
    return []


def work(clause: Clause) -> list[ExtractedItem]:
    """Problems, tools and the business: statements (goals are read even in modal clauses)."""
    return problems(clause) + tools(clause) + business(clause)
