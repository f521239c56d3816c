"""Small English helpers for the rules: first person to "User", stable keys, plurals."""

from __future__ import annotations

import re

from memories.text import KEY_STOP_WORDS

_AS_IS = frozenset(
    "is was has had did can could would should will might must got went ran met saw flew took won lost began became "
    "left bought gave came wrote spent made said told quit put set cut let hit felt kept found thought brought sold "
    "sent built broke chose drove ate fell forgot grew knew paid read rode sang sat slept spoke stood swam taught "
    "threw understood woke wore gave".split()
)
_CONTRACTIONS = {"m": "am", "re": "are", "ve": "have", "d": "would", "ll": "will"}
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})
_NEGATED_AUX = {
    "don't": "doesn't",
    "do not": "does not",
    "haven't": "hasn't",
    "have not": "has not",
}
_ADVERBS = r"also|really|usually|always|never|still|just|actually|absolutely|totally|often|sometimes|mostly|now"
_THIRD_PERSON = (
    (r"\b(?:i'm|i am|im|we're|we are)\b", "User is"),
    (r"\b(?:i've|i have|we've|we have)\b", "User has"),
    (r"\b(?:i was|we were)\b", "User was"),
    (r"\b(?:i'd|we'd)\b", "User would"),
    (r"\b(?:i'll|we'll|i will|we will)\b", "User will"),
    (
        r"\b(?:i|we) (don't|do not|haven't|have not)\b",
        lambda m: "User " + _NEGATED_AUX[m.group(1).lower()],
    ),
    (r"\b(?:i|we) (can't|cannot|can|could|didn't|did|won't|must|had)\b", r"User \1"),
    (
        r"\b(?:i|we) ((?:(?:" + _ADVERBS + r") )*)(\w+(?:-\w+)?)",
        lambda m: "User " + m.group(1) + verb_s(m.group(2)),
    ),
    (r"\b(?:my|our)\b", "User's"),
    (r"\b(?:me|myself|us|ourselves)\b", "User"),
)


def normalize(text: str) -> str:
    """Typographic apostrophes and quotes made plain, whitespace collapsed, and the subject
    pronouns' contractions spelt out ("I'm" -> "I am", "we've" -> "we have") so that rules need one
    form."""
    text = re.sub(r"\s+", " ", text.translate(_APOSTROPHES)).strip()
    text = re.sub(r"\b([Ii])m\b", r"\1 am", text)
    return re.sub(r"\b(i|we|you|they)'(m|re|ve|d|ll)\b", _expand, text, flags=re.I)


def _expand(m: re.Match) -> str:
    return m.group(1) + " " + _CONTRACTIONS[m.group(2).lower()]


def clean(text: str) -> str:
    """A phrase without surrounding quotes, spaces and punctuation."""
    return re.sub(r"\s+", " ", text).strip(" \"',;:.!")


def verb_s(verb: str) -> str:
    """The third person singular of a present-tense verb: like -> likes, watch -> watches (a verb in
    the past tense stays as it is)."""
    v = verb.lower()
    if v in _AS_IS:
        return v
    if v in ("do", "go"):
        return v + "es"
    if v == "have":
        return "has"
    if v.endswith(("ed", "s")) and len(v) > 3 and not v.endswith(("ss", "eed")):
        return v  # already past tense or inflected
    if re.search(r"(sh|ch|x|z|ss)$", v):
        return v + "es"
    if re.search(r"[^aeiou]y$", v):
        return v[:-1] + "ies"
    return v + "s"


def third_person(clause: str) -> str:
    """'I'm vegetarian' -> 'User is vegetarian'; 'my team uses Go' -> "User's team uses Go"."""
    s = clean(normalize(clause))
    for pattern, replacement in _THIRD_PERSON:
        s = re.sub(pattern, replacement, s, flags=re.I)
    first = re.search(r"\bUser\b", s)
    if first:  # "User starts User's new job" -> "User starts their new job"
        s = s[: first.end()] + re.sub(r"\bUser's\b", "their", s[first.end() :])
    return s[:1].upper() + s[1:]


def key(phrase: str, max_words: int = 4) -> str:
    """A stable subject key for a phrase: lower case, no articles or possessives, at most
    `max_words`."""
    words = re.findall(r"[a-z0-9][a-z0-9+#&.'-]*", normalize(phrase).lower())
    words = [w.removesuffix("'s").strip(".'-") for w in words]
    words = [w for w in words if w not in KEY_STOP_WORDS]
    return " ".join(w for w in words[:max_words] if w)


def article(noun_phrase: str) -> str:
    """ "a" or "an" for a noun phrase."""
    return "an" if noun_phrase[:1].lower() in "aeiou" else "a"
