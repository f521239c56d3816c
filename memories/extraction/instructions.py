"""Rules for how the user wants to be answered ("always answer in English", "keep answers short")
and for the words they define ("when I say 'the monolith' I mean our old billing app")."""

from __future__ import annotations

import re

from .common import Clause
from .english import clean, key
from .items import ExtractedItem

_LEAD = r"^(?:please\s+|from now on,?\s+|in (?:the )?future,?\s+|going forward,?\s+|and\s+)*"
_ALWAYS = re.compile(_LEAD + r"((?:always|never)\s+(?!mind\b).+)$", re.I)
_DONT = re.compile(
    _LEAD
    + r"((?:don't|do not|stop)\s+(?:ever\s+)?(?:using|use|adding|add|including|include|mentioning|mention|"
    r"suggesting|suggest|recommending|recommend|calling|call|saying|say|writing|write|giving|give|answering|answer|"
    r"replying|reply|responding|respond|apologi[sz]ing|apologi[sz]e|asking|ask|explaining|explain|repeating|repeat|"
    r"summari[sz]ing|summari[sz]e|sending|send)\b.+)$",
    re.I,
)
_STYLE = re.compile(
    _LEAD
    + r"((?:answer|reply|respond|write|talk|speak)(?:\s+to me)?\s+(?:in|with|using|like|briefly|concisely|formally|"
    r"casually|simply|plainly)\b.+|keep (?:your |the |all )?(?:answers|replies|responses|explanations|it)\s+.+|"
    r"be (?:more |less |very )?(?:concise|brief|direct|formal|casual|detailed|thorough|blunt|gentle|succinct)\b.*|"
    r"use (?:the )?(?:metric|imperial|celsius|fahrenheit|british english|american english|bullet points|markdown|"
    r"plain text|tables|emojis?|fewer emojis|more examples|examples)\b.*)$",
    re.I,
)
_WANT = re.compile(
    r"^i(?:'d| would)? (?:like|want|prefer) (?:you to |that you |it if you )((?:always|never|answer|reply|respond|keep|"
    r"be|use|talk|speak|stop|write|explain|avoid)\b.+)$",
    re.I,
)
_PREFER = re.compile(
    r"^i (?:really )?(?:prefer|like|want|need|use) ((?:(?:short|shorter|brief|concise|long|longer|detailed|simple|"
    r"technical|step-by-step|formal|casual)\s+(?:answers|replies|responses|explanations)|(?:the )?(?:metric|imperial)"
    r"(?: system| units)?|celsius|fahrenheit)\b.*)$",
    re.I,
)
_TOPICS = (
    ("language", r"\b(?:in|speak|use)\s+(?:english|french|german|spanish|italian|portuguese|dutch|polish|russian|"
     r"chinese|japanese|korean|arabic|hindi|swedish|norwegian|danish|finnish|greek|turkish|hebrew)\b"),
    ("length", r"\b(?:short|shorter|brief|concise|succinct|long|longer|detailed|thorough|terse|verbose|length)\b"),
    ("emoji", r"\bemojis?\b"),
    ("units", r"\b(?:metric|imperial|celsius|fahrenheit)\b"),
    ("format", r"\b(?:bullet points?|markdown|tables?|plain text|code blocks?)\b"),
    ("tone", r"\b(?:formal|casual|friendly|polite|blunt|direct|gentle)\b"),
)  # fmt: skip
_TERMS = (
    re.compile(r"\bwhen i say [\"']?(.+?)[\"']?,? i mean (.+)", re.I),
    re.compile(r"\bby [\"'](.+?)[\"'],? i mean (.+)", re.I),
    re.compile(r"^[\"']?([\w][\w -]{1,40}?)[\"']? (?:means|stands for) (.+)", re.I),
    # 'in our team a "spike" means ...', 'at my company "P0" means ...'
    re.compile(
        r"^(?:in|at|on|for) (?:our|my) (?:team|company|org|organi[sz]ation|office|house|family|group|lab|"
        r"school|project|shop)\s*,?\s*(?:a |an |the )?[\"']([^\"']{1,40})[\"'] (?:means|is short for|stands for) "
        r"(.+)",
        re.I,
    ),
)


def _topic(text: str) -> str:
    for topic, pattern in _TOPICS:
        if re.search(pattern, text, re.I):
            return topic
    return key(text, 6)


def instructions(clause: Clause) -> list[ExtractedItem]:
    """How the user wants to be answered. One subject per topic (language, length, emoji, units,
    format, tone), so "answer in French" later supersedes "answer in English"."""
    text = clause.text
    if m := _PREFER.search(text):
        said = "User prefers " + clean(m.group(1))
    elif m := _WANT.search(text):
        said = "User wants the assistant to " + clean(m.group(1))
    elif m := _ALWAYS.search(text) or _DONT.search(text) or _STYLE.search(text):
        said = clean(m.group(1))
        said = said[:1].upper() + said[1:]
    else:
        return []
    return [ExtractedItem("instruction", "instruction:" + _topic(said), said, 0.85)]


def terms(clause: Clause) -> list[ExtractedItem]:
    """Words the user defines: 'When I say "the monolith" I mean our old billing app'."""
    for pattern in _TERMS:
        if m := pattern.search(clause.text):
            term, meaning = clean(m.group(1)), clean(m.group(2))
            said = f'When the user says "{term}" they mean {meaning}'
            return [ExtractedItem("fact", f"term:{term.lower()}", said, 0.85)]
    return []
