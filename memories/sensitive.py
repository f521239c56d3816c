"""Special categories of personal data (GDPR art. 9) in text: health, religion or beliefs, sexual
orientation or sex life, political opinions, racial or ethnic origin, trade-union membership,
genetic or biometric data. Precision first: the patterns name the category explicitly (documented
limits in the README)."""

from __future__ import annotations

import re

from accounts.models import SensitiveCategory

_PATTERNS: dict[str, str] = {
    SensitiveCategory.HEALTH: (
        r"diagnos\w*|depress\w*|anxiety|panic attacks?|diabet\w*|cancer|tumou?r|chemo\w*|hiv|aids|"
        r"pregnan\w*|miscarriage|medication|antidepressants?|therap(?:y|ist)|psychiatr\w*|adhd|autis\w*|"
        r"asthma|epilep\w*|surgery|chronic (?:pain|illness)|bipolar|schizophren\w*|disorder|disabilit\w*|"
        r"allerg\w*|intoleran\w*|illness|disease|sick leave|rehab|addict\w*|sober|blood pressure"
    ),
    SensitiveCategory.RELIGION: (
        r"christian|catholic|protestant|muslim|islam\w*|jewish|judaism|hindu\w*|buddhis\w*|sikh|atheis\w*|"
        r"agnostic|church|mosque|synagogue|pray(?:er|ers|ing|s)?|my faith|religio\w*|halal|kosher|ramadan|"
        r"bible|quran|torah"
    ),
    SensitiveCategory.SEXUALITY: (
        r"gay|lesbian|bisexual|queer|lgbt\w*|transgender|trans woman|trans man|non-binary|nonbinary|"
        r"sexual orientation|coming out|came out|sex life|my sexuality|asexual|pansexual"
    ),
    SensitiveCategory.POLITICS: (
        r"vot(?:e|ed|ing) (?:for|against)|democrat\w*|republican\w*|labour party|tory|tories|"
        r"conservative party|socialis\w*|communis\w*|political views?|left-wing|right-wing|libertarian|"
        r"party member(?:ship)?|my politics"
    ),
    SensitiveCategory.ETHNICITY: (
        r"ethnic\w*|my race|racial|(?:i'm|i am) (?:a )?(?:black|white|asian|hispanic|latin[oa]|arab|"
        r"african[- ]american|indigenous|native american|caucasian)\b"
    ),
    SensitiveCategory.UNION: r"trade[- ]union|labou?r union|union member\w*|joined the union|union rep\w*",
    SensitiveCategory.GENETIC: r"dna test\w*|genetic\w*|genome|brca\d?|biometric\w*|fingerprints?|face id|iris scan",
}
_COMPILED = {
    category: re.compile(rf"\b(?:{pattern})\b", re.I) for category, pattern in _PATTERNS.items()
}


def sensitive_categories(text: str) -> set[str]:
    """The special categories `text` touches (possibly none)."""
    return {str(category) for category, pattern in _COMPILED.items() if pattern.search(text)}


def not_allowed(text: str, allowed: frozenset[str] | set[str]) -> set[str]:
    """The categories in `text` that the user has not opted in to."""
    return sensitive_categories(text) - set(allowed)


def is_allowed(text: str, allowed: frozenset[str] | set[str]) -> bool:
    """Whether `text` touches only special categories the user has opted in to (or none)."""
    return not not_allowed(text, allowed)
