"""Rules for what the user eats and likes: diet, allergies, intolerances, foods they avoid, likes
and dislikes, favourites, with their retractions ("I'm not vegetarian any more", "I no longer like
jazz")."""

from __future__ import annotations

import re

from memories.text import singular

from .common import IM, Clause
from .english import clean, key
from .items import ExtractedItem

DIETS = (
    r"vegetarian|vegan|pescatarian|pescetarian|flexitarian|keto|paleo|halal|kosher|carnivore|low-carb|plant-based|"
    r"gluten-free|dairy-free"
)
_DIET_TEXT = {
    d: f"User follows a {d} diet"
    for d in ("keto", "paleo", "low-carb", "gluten-free", "dairy-free")
}
_WE = r"(?:we're|we are|my \w+(?: \w+)? and i are|(?:both|all) of us are)"
_DIET = re.compile(
    r"\b(?:"
    + IM
    + r"|i've been|i have been|i've gone|i went|i became|i've become|i'm now|i switched to|i eat|"
    + _WE
    + r")\s+(?:(?:a|an|strictly|fully|now|also|still|completely|100%|full|totally|actually)\s+)*"
    r"(mostly\s+)?("
    + DIETS
    + r")\b(?!\s+(?:food|restaurant|recipe|option|dish|meal|friend|place))",
    re.I,
)
_DIET_FOLLOW = re.compile(r"\bi(?:'m| am)? (?:on|follow|eat) an? (" + DIETS + r") diet\b", re.I)
_NO_DIET = re.compile(
    r"\b(?:(?:i'm|i am|im) (?:no longer|not) (?:an? )?|i (?:used to be|stopped being|quit being|"
    r"gave up being) (?:an? )?|"
    r"i (?:stopped|quit|gave up) (?:eating )?)(" + DIETS + r")\b",
    re.I,
)
_MEAT_AGAIN = re.compile(r"\bi (?:started eating|eat|'m eating|am eating) meat again\b", re.I)
_ALLERGY = re.compile(
    r"\b(?:"
    + IM
    + r"|i am)\s+(?:(?:severely|very|highly|deathly|also|slightly|mildly|seriously)\s+)*allergic to ([^,.;!?]+)",
    re.I,
)
_HAS_ALLERGY = re.compile(
    r"\bi have (?:an?|severe|mild|bad)?\s*(?:severe |mild |bad )?([a-z]+(?: [a-z]+)?) allergy\b",
    re.I,
)
_NO_ALLERGY = re.compile(
    r"\b(?:" + IM + r"|i am) (?:no longer|not) allergic to ([^,.;!?]+?)(?: any ?more)?$", re.I
)
_INTOLERANT = re.compile(
    r"\b(?:" + IM + r"|i am) (lactose|gluten|fructose|histamine)[- ]intolerant\b", re.I
)
_CELIAC = re.compile(r"\b(?:" + IM + r" (?:a )?|i have )(?:celiac|coeliac)\b", re.I)
_GAVE_UP = re.compile(
    r"^i (?:have |recently |just )?(?:gave up|given up|quit|stopped eating|stopped drinking|cut out) (red "
    r"meat|meat|dairy|"
    r"sugar|alcohol|gluten|caffeine|coffee|pork|beef|fish|eggs|bread|carbs|chocolate|soda|booze|drinking)\b",
    re.I,
)
_AVOID = re.compile(
    r"^i (?:don't|do not|never|can't|cannot) (eat|drink)\b(?: ([^,.;!?]+))?$|^i (?:can't|cannot) (have) ([^,.;!?]+)$",
    re.I,
)
_FILLERS = r"(?:\s+(?:a lot|so much|very much|too|as well|a bit|a little|quite a bit|any ?more|in general))+$"
_TIME_QUALIFIERS = (
    r"\s+(?:on (?:the )?weekends?|in the (?:morning|evening|afternoon)s?|at night|every (?:day|week|morning|evening)|"
    r"these days|nowadays|sometimes|lately|in (?:winter|summer|spring|autumn|fall)|when i can)$"
)
_NOT_TASTES = re.compile(
    r"^(?:it|that|this|these|those|them|him|her|you|your|yours|how|when|what|where|why|which|who|if|the idea|the way|"
    r"to know|to hear|to see|to help|to think|to say|to be|hearing|talking to you|about|being able|having you|"
    r"doing that|so much|a lot|the sound of|everything|nothing|anything|some|one|ones)\b"
    r"|\b(?:answers?|replies|reply|responses?|explanations?|emojis?|metric|imperial|celsius|fahrenheit)\b",
    re.I,
)
_ADVERBS = (
    r"(?:(?:really|absolutely|totally|also|still|just|truly|genuinely|do|kind of|kinda|sort of|quite"
    r"|actually|so)\s+)*"
)
_TASTE_VERBS = {
    "love": "loves", "like": "likes", "enjoy": "enjoys", "adore": "adores", "prefer": "prefers", "hate": "hates",
    "dislike": "dislikes", "detest": "detests", "loathe": "loathes", "can't stand": "can't stand",
    "cannot stand": "can't stand", "don't like": "doesn't like", "do not like": "doesn't like",
    "don't enjoy": "doesn't enjoy", "don't really like": "doesn't like", "not a fan of": "is not a fan of",
    "a fan of": "is a fan of", "a big fan of": "is a big fan of", "a huge fan of": "is a huge fan of",
    "into": "is into", "obsessed with": "is obsessed with", "passionate about": "is passionate about",
}  # fmt: skip
_TASTE = re.compile(
    r"^(?:i'm|i am|we're|we are|i|we)\s+"
    + _ADVERBS
    + r"("
    + "|".join(sorted(map(re.escape, _TASTE_VERBS), key=len, reverse=True))
    + r")\s+(.+)$",
    re.I,
)
_NO_TASTE = re.compile(
    r"^(?:i|we)\s+(?:(?:don't|do not) (?:really )?(like|love|enjoy) (.+?) any ?more|(?:no longer|used to) "
    r"(like|love|enjoy) "
    r"(.+)|(?:'m|am) (?:not|no longer) into (.+?)(?: any ?more)?)$",
    re.I,
)
_FAVORITE = re.compile(
    r"\bmy (?:all-time |absolute |current )?favou?rite ([a-z]+(?: [a-z]+)?) (?:is|are) (.+)$", re.I
)
_FAVORITE_AFTER = re.compile(
    r"^(.+?) (?:is|are) my (?:all-time |absolute |current )?favou?rite ([a-z]+(?: [a-z]+)?)$", re.I
)


def _preference(
    subject: str, text: str, confidence: float = 0.85, op: str = "add", **attributes
) -> ExtractedItem:
    return ExtractedItem("preference", subject, text, confidence, attributes=attributes, op=op)


def diet(clause: Clause) -> list[ExtractedItem]:
    """The user's own diet ("I'm vegetarian", "I went vegan", "I'm on a keto diet") or its end."""
    text = clause.text
    if m := _NO_DIET.search(text):
        return [_preference("diet", f"User is no longer {m.group(1).lower()}", op="retract")]
    if _MEAT_AGAIN.search(text):
        return [_preference("diet", "User eats meat again", op="retract")]
    if m := _DIET.search(text):
        label = m.group(2).lower().replace("pescetarian", "pescatarian")
        words = f"mostly {label}" if m.group(1) else label
        return [_preference("diet", _DIET_TEXT.get(words, f"User is {words}"), 0.9, diet=label)]
    if m := _DIET_FOLLOW.search(text):
        label = m.group(1).lower()
        return [_preference("diet", _DIET_TEXT.get(label, f"User is {label}"), 0.9, diet=label)]
    return []


def _things(phrase: str) -> list[str]:
    """ "peanuts, shellfish and cats" -> the three of them."""
    parts = re.split(r",\s*(?:and\s+|or\s+)?|\s+(?:and|or|as well as)\s+", clean(phrase))
    return [clean(re.sub(_FILLERS, "", p, flags=re.I)) for p in parts if clean(p)]


def allergies(clause: Clause) -> list[ExtractedItem]:
    """Allergies and intolerances the user has, or no longer has."""
    text = clause.text
    if m := _NO_ALLERGY.search(text):
        return [
            _preference(
                f"allergy:{singular(key(t))}", f"User is no longer allergic to {t}", op="retract"
            )
            for t in _things(m.group(1))
            if not re.match(r"any|some|every", t, re.I)
        ]
    items = []
    if (m := _ALLERGY.search(text)) and not re.search(r"\bnot\b|n't", text[: m.start()], re.I):
        items += [
            _preference(f"allergy:{singular(key(t))}", f"User is allergic to {t}", 0.9)
            for t in _things(m.group(1))
        ]
    elif (m := _HAS_ALLERGY.search(text)) and m.group(1).lower() not in (
        "a",
        "an",
        "no",
        "any",
        "severe",
        "mild",
    ):
        thing = m.group(1).lower()
        items.append(
            _preference(f"allergy:{singular(key(thing))}", f"User has a {thing} allergy", 0.9)
        )
    if m := _INTOLERANT.search(text):
        items.append(
            _preference(
                f"intolerance:{m.group(1).lower()}", f"User is {m.group(1).lower()} intolerant", 0.9
            )
        )
    elif _CELIAC.search(text):
        items.append(_preference("intolerance:gluten", "User has celiac disease", 0.9))
    return items


def foods(clause: Clause) -> list[ExtractedItem]:
    """Foods and drinks the user avoids: "I don't eat pork", "I don't drink", "I can't have
    dairy"."""
    if m := _GAVE_UP.search(clause.text):
        thing = "alcohol" if m.group(1).lower() in ("drinking", "booze") else m.group(1).lower()
        return [_preference(f"food:{key(thing)}", f"User gave up {thing}", 0.85)]
    m = _AVOID.search(clause.text)
    if not m:
        return []
    verb, thing = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    thing = clean(re.sub(_FILLERS, "", thing or "", flags=re.I))
    if not thing and verb.lower() == "drink":
        thing = "alcohol"
    if (
        not thing
        or _NOT_TASTES.search(thing)
        or re.match(r"(?:right|now|today|much|before|after|at|in)\b", thing, re.I)
    ):
        return []
    negation = (
        re.search(r"\b(don't|do not|never|can't|cannot)\b", clause.text, re.I).group(1).lower()
    )
    negation = {"don't": "doesn't", "do not": "does not"}.get(negation, negation)
    return [
        _preference(f"food:{key(t)}", f"User {negation} {verb.lower()} {t}", 0.85)
        for t in _things(thing)
    ]


def _taste_key(thing: str, verb: str) -> str:
    thing = re.sub(_TIME_QUALIFIERS, "", re.sub(_FILLERS, "", thing, flags=re.I), flags=re.I)
    if verb == "prefer":
        thing = re.split(r"\s+(?:over|to|rather than|instead of|more than)\s+", thing, maxsplit=1)[
            0
        ]
    return "taste:" + key(re.sub(r"^to\s+", "", thing, flags=re.I))


def tastes(clause: Clause) -> list[ExtractedItem]:
    """Likes and dislikes ("I love sushi", "I can't stand jazz", "I'm a big fan of Tolkien"),
    favourites ("my favorite band is Muse"), and likes that ended ("I don't like jazz any more")."""
    text = clause.text
    if m := _NO_TASTE.search(text):
        verb = (m.group(1) or m.group(3) or "be into").lower()
        thing = clean(m.group(2) or m.group(4) or m.group(5))
        said = {"like": "likes", "love": "loves", "enjoy": "enjoys", "be into": "is into"}[verb]
        return [
            _preference(_taste_key(thing, verb), f"User no longer {said} {thing}", op="retract")
        ]
    if m := _FAVORITE.search(text) or _FAVORITE_AFTER.search(text):
        category, thing = (
            (m.group(1), m.group(2)) if m.re is _FAVORITE else (m.group(2), m.group(1))
        )
        category, thing = clean(category).lower(), clean(thing)
        return [
            _preference(
                f"favorite:{singular(key(category))}",
                f"User's favorite {category} is {thing}",
                0.85,
            )
        ]
    m = _TASTE.search(text)
    if not m or _NOT_TASTES.search(m.group(2)):
        return []
    verb = " ".join(m.group(1).lower().split())
    thing = clean(re.sub(_FILLERS, "", m.group(2), flags=re.I))
    if not thing:
        return []
    said = f"User {_TASTE_VERBS[verb]} {thing}"
    return [_preference(_taste_key(thing, verb), said, 0.8, verb=verb)]
