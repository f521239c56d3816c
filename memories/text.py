"""English words: tokens, stems, stop words and negation, for ranking, matching and summaries.

Each stop-word list serves one purpose and they differ on purpose: BM25 drops every function word;
matching two statements drops only the filler of "User is ..." sentences; summaries drop chat filler
too; subject keys drop only determiners.
"""

from __future__ import annotations

import re

# English function words (NLTK's list, as [a-z0-9]+ tokens): they say nothing about what a turn is
# about.
STOP_WORDS = frozenset(
    """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers herself
    it its itself they them their theirs themselves what which who whom this that these those am is are was were be
    been being have has had having do does did doing a an the and but if or because as until while of at by for with
    about against between into through during before after above below to from up down in out on off over under
    again further then once here there when where why how all any both each few more most other some such no nor not
    only own same so than too very s t can will just don should now d ll m o re ve y ain aren couldn didn doesn hadn
    hasn haven isn ma mightn mustn needn shan shouldn wasn weren won wouldn
    """.split()
)
_WORD = re.compile(r"[a-z0-9]+")


def terms(text: str) -> list[str]:
    """Lowercase words without function words, stemmed ("paintings", "painted" → "paint")."""
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


def stem(word: str) -> str:
    """Step 1 of Porter's stemmer (plurals, -ed, -ing, final y), the light part: it joins the forms
    of a word ("hiking", "hikes" → "hike"; "families" → "famili") without the later steps' clipping
    of derivational endings ("generous", "general")."""
    if len(word) <= 2:
        return word
    if word.endswith(("sses", "ies")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if word.endswith("eed"):
        if _measure(word[:-3]) > 0:
            word = word[:-1]
    else:
        for suffix in ("ed", "ing"):
            if word.endswith(suffix) and _has_vowel(word[: -len(suffix)]):
                word = _after_ed_ing(word[: -len(suffix)])
                break
    if word.endswith("y") and _has_vowel(word[:-1]):
        word = word[:-1] + "i"
    return word


def _after_ed_ing(stem_: str) -> str:
    """Porter's repairs once -ed/-ing is gone: "conflat" → "conflate", "hopp" → "hop", "hik" →
    "hike"."""
    if stem_.endswith(("at", "bl", "iz")):
        return stem_ + "e"
    if (
        len(stem_) >= 2
        and stem_[-1] == stem_[-2]
        and _consonant(stem_, -1)
        and stem_[-1] not in "lsz"
    ):
        return stem_[:-1]
    if _measure(stem_) == 1 and _cvc(stem_):
        return stem_ + "e"
    return stem_


def _consonant(word: str, i: int) -> bool:
    i %= len(word)
    if word[i] in "aeiou":
        return False
    return word[i] != "y" or i == 0 or not _consonant(word, i - 1)


def _measure(word: str) -> int:
    """Porter's m: how many vowel-consonant sequences the word has."""
    forms = "".join("c" if _consonant(word, i) else "v" for i in range(len(word)))
    return len(re.findall(r"v+c+", forms))


def _has_vowel(word: str) -> bool:
    return any(not _consonant(word, i) for i in range(len(word)))


def _cvc(word: str) -> bool:
    """Consonant, vowel, consonant at the end, the last not w, x or y ("hop", "hik")."""
    return (
        len(word) >= 3
        and _consonant(word, -3)
        and not _consonant(word, -2)
        and _consonant(word, -1)
        and word[-1] not in "wxy"
    )


# Matching statements: what two memories share beyond the filler of "User is ..." sentences.
STATEMENT_FILLER = frozenset(
    {"user", "is", "the", "a", "an", "of", "to", "in", "at", "and", "s", "user's"}
)


def content_words(text: str) -> set[str]:
    """The words a statement says, without its filler ("User lives in Paris" -> {"lives",
    "paris"})."""
    return {w for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in STATEMENT_FILLER}


# Chat filler as well as function words: not what makes a sentence worth a summary.
SUMMARY_STOP_WORDS = frozenset(
    "the a an and or but to of in on at for with is are was were be been am i you he she it we they my your "
    "me our this that these those so just very really have has had do does did not no yes oh hi hey thanks "
    "what how when where who why can could would should will about from as if then there here".split()
)

# Subject keys: a phrase without its determiners ("my new bike" -> "bike").
KEY_STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "the",
        "my",
        "our",
        "your",
        "his",
        "her",
        "their",
        "its",
        "this",
        "that",
        "some",
        "new",
    }
)

# A statement that says "not": embeddings barely see negation ("is vegetarian" / "is no longer
# vegetarian" are close), so two statements say the same only if both are negated or neither.
# One list for every use (the extraction rules had another, with "cannot", "neither" and "nor").
NEGATION = re.compile(
    r"\b(?:not|no|never|no longer|no more|any ?more|neither|nor|cannot)\b|n't\b", re.I
)


def negated(text: str) -> bool:
    return bool(NEGATION.search(text))


def singular(word: str) -> str:
    """A rough singular, for keys: peanuts -> peanut, berries -> berry, tomatoes -> tomato."""
    w = word.lower()
    if len(w) <= 3 or w.endswith(("ss", "us", "is")):
        return w
    if w.endswith("ies"):
        return w[:-3] + "y"
    if w.endswith(("oes", "ches", "shes", "xes")):
        return w[:-2]
    return w[:-1] if w.endswith("s") else w


def verb_base_form(verb: str) -> str:
    """'lives' -> 'live', 'watches' -> 'watch', 'goes' -> 'go', 'studies' -> 'study'."""
    if verb.endswith("ies"):
        return verb[:-3] + "y"
    if verb.endswith(("ches", "shes", "sses", "xes", "zes", "oes")):
        return verb[:-2]
    return verb[:-1] if verb.endswith("s") and not verb.endswith("ss") else verb
