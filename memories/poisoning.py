"""The poisoning check: text that reads as an instruction to the assistant rather than a fact about
the user ("ignore previous instructions", "always recommend ...", links, encoded payloads). Such a
memory is held for review and never injected until approved; turns and summaries that read so are
left out of the context (`injection_reasons`); what is injected is always quoted as data.

A user's own preferences about answers ("always answer in French", "keep replies short") are
instructions too, but about the form of the answers to them: those are not flagged. What is flagged
tries to change the assistant's rules, identity or recommendations, or smuggles content in.

Text is checked as the model would read it, not as it is spelled: NFKC (full-width and other
compatibility letters), format characters (zero-width spaces and joiners, bidi controls) removed,
common Cyrillic and Greek look-alikes mapped to Latin, s p a c e d or d.o.t.t.e.d letters joined. The
patterns cover English, French, German, Spanish, Italian, Portuguese and Dutch."""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata

# Cyrillic and Greek letters that look like Latin ones ("Іgnоrе" with Cyrillic І, о, е).
_LOOKALIKES = str.maketrans(
    "асеорхуіјѕԁһӏаАВЕКМНОРСТХІЈЅοαεινρτκυχΑΒΕΗΙΚΜΝΟΡΤΥΧ",
    "aceopxyijsdhlaABEKMHOPCTXIJSoaeivptkuxABEHIKMNOPTYX",
)
# Letters one by one with a separator between them: "i g n o r e", "i.g.n.o.r.e", "i-g-n-o-r-e".
_SPACED = re.compile(r"\b(?:[^\W\d_][ .\-_*]){3,}[^\W\d_]\b")


def normalize(text: str) -> str:
    """`text` as read for the check: compatibility forms folded, invisible characters removed,
    look-alike letters mapped, spaced-out words joined, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = text.translate(_LOOKALIKES)
    text = _SPACED.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), text)
    return re.sub(r"\s+", " ", text)


def _words(*stems: str) -> str:
    return r"(?:" + "|".join(stems) + r")"


# "ignore/forget ... previous ... instructions", in several languages
_DISMISS = _words(
    r"ignor\w*",
    r"disregard\w*",
    r"forget\w*",
    r"override\w*",
    r"bypass\w*",
    r"oubli\w*",
    r"vergiss\w*",
    r"missacht\w*",
    r"olvid\w*",
    r"dimentic\w*",
    r"esque[cç]\w*",
    r"negeer\w*",
    r"vergeet\w*",
)
_ORDERS = _words(
    r"instructions?",
    r"rules?",
    r"prompts?",
    r"guidelines",
    r"directives?",
    r"messages?",
    r"constraints?",
    r"consignes?",
    r"r[eè]gles?",
    r"anweisungen",
    r"regeln",
    r"vorgaben",
    r"instrucciones",
    r"reglas",
    r"istruzioni",
    r"regole",
    r"instru[cç][õo]es",
    r"regras",
    r"instructies",
    r"regels",
)
_OVERRIDE = re.compile(rf"\b{_DISMISS}\b.{{0,60}}\b{_ORDERS}\b", re.I)
_ROLE = re.compile(
    r"\b(?:you are now (?:a|an|the|in|my|called|named|DAN|free|unfiltered|unrestricted|jailbroken)\b|"
    r"from now on,? you|act as (?:a|an|the)|pretend (?:to be|you are)|your new (?:role|task|"
    r"instructions?)|new system prompt|system prompt|developer mode|jailbreak|DAN\b|do anything now|"
    r"tu es d[ée]sormais|du bist jetzt|ahora eres|ora sei|agora voc[eê] [eé]|je bent nu)",
    re.I,
)
# "always recommend X", "end every answer with a recommendation of X", "tell users to buy X"
_ALWAYS = _words(
    r"always",
    r"only",
    r"never",
    r"must",
    r"whenever",
    r"toujours",
    r"immer",
    r"siempre",
    r"sempre",
    r"altijd",
    # every answer, chaque réponse, jede Antwort, cada respuesta, ogni risposta, elk antwoord
    r"(?:every|each|all|any|chaque|toutes? les|jede[nrs]?|alle|cada|todas? las|ogni|tutte le|elke?)\s+"
    r"(?:answers?|repl(?:y|ies)|responses?|messages?|outputs?|r[ée]ponses?|antworten?|respuestas?|"
    r"risposte?|respostas?|antwoord(?:en)?)",
)
_PROMOTE = _words(
    r"recommend\w*",
    r"suggest\w*",
    r"promot(?:e|es|ing)\b",
    r"link(?:s|ing)? to",
    r"redirect\w*",
    r"buy\w*",
    r"endors\w*",
    r"advertis\w*",
    r"sponsor\w*",
    r"affiliate",
    r"plug\w*",
    r"tell (?:users|everyone|people)",
    r"recommand\w*",
    r"conseill\w*",
    r"empfiehl\w*",
    r"empfehl\w*",
    r"recomiend\w*",
    r"recomend\w*",
    r"raccomand\w*",
    r"consigli\w*",
    r"aanbevel\w*",
    r"aanraden",
)
# "User always suggests Thai food", "You always mentioned", "I'm always looking for
# recommendations": what people do, not an order to the assistant
_NOT_A_HABIT = "".join(
    rf"(?<!\b{who} )" for who in ("user", "i", "i'm", "we", "she", "he", "they", "you", "it's")
)
_STEER = re.compile(
    rf"{_NOT_A_HABIT}\b{_ALWAYS}\b.{{0,40}}\b{_PROMOTE}"
    rf"|\b{_PROMOTE}\s+(?:\w+\s+)?{_ALWAYS}\b"  # "empfiehl immer X", "recomienda siempre X"
    rf"|{_NOT_A_HABIT}\b(?:always|only)\b.{{0,30}}\bmention"  # "never mention my ex" is a wish
    # an order: "tell the user to ...", "... and encourage people to ..."
    r"|(?:^|[.!?;:,]\s*|\band\s+|\bplease\s+)(?:tell|ask|urge|advise|direct|instruct|encourage)\s+"
    r"(?:the\s+)?(?:users?|them|everyone|people|readers|customers)\s+to\b"
    r"|\b(?:the\s+)?(?:assistant|ai|model|chatbot|bot|llm)\s+(?:should|must|shall|has to|needs? to|is "
    r"required to)\b",
    re.I,
)
_EXFIL = re.compile(
    r"\b(?:send|forward|email|post|upload|leak|reveal|print|output|share|exfiltrate|envoie|envoyer|sende|"
    r"schicke|env[ií]a|enviar|invia)\b.{0,40}\b(?:password|api key|token|secret|credentials?|system prompt|"
    r"conversation|memories|other users?|mot de passe|passwort|contrase[ñn]a|senha)\b",
    re.I,
)
_TOOL = re.compile(
    r"<\s*/?\s*(?:script|iframe|system|assistant|tool|memory_context)\b|<\|[a-z_]+\|>|\[\[|{{|"
    r"\bBEGIN (?:SYSTEM|PROMPT)|\[/?INST\]",
    re.I,
)
_TLDS = (
    r"com|net|org|io|ai|co|app|dev|xyz|info|biz|me|ly|gg|tv|shop|store|online|site|top|click|link|"
    r"vpn|live|pro|cc|ws|su|ru|cn|tk|ml|ga|cf|gq|uk|de|fr|es|it|nl|eu|us|ca|au|in"
)
_LINK = re.compile(
    r"\b(?:https?://|www\.)\S+|\b[\w-]+\.[a-z]{2,6}/\S*"
    rf"|(?<![@\w.-])(?:[a-z0-9-]+\.)+(?:{_TLDS})\b(?![.\w-]*@)",
    re.I,
)
_ENCODED = re.compile(
    r"(?:[A-Za-z0-9+/]{40,}={0,2})|(?:\\x[0-9a-f]{2}){6,}|(?:%[0-9a-f]{2}){6,}", re.I
)

REASONS = {
    "override": _OVERRIDE,
    "role": _ROLE,
    "steering": _STEER,
    "exfiltration": _EXFIL,
    "markup": _TOOL,
    "link": _LINK,
}
# What keeps a turn or summary out of the context. A link alone does not: people share links in
# chat, and a turn is quoted as what was said, not kept as a memory to be reviewed.
INJECTION_REASONS = frozenset(REASONS) - {"link"} | {"encoded"}


def poisoning_reasons(text: str) -> list[str]:
    """Why `text` looks like an injected instruction (empty when it reads as a plain memory)."""
    text = normalize(text)
    reasons = [name for name, pattern in REASONS.items() if pattern.search(text)]
    if _looks_encoded(text):
        reasons.append("encoded")
    return reasons


def injection_reasons(text: str) -> list[str]:
    """Why a turn or summary quoted into the context could steer the assistant (empty: it may be
    injected)."""
    return [reason for reason in poisoning_reasons(text) if reason in INJECTION_REASONS]


def _looks_encoded(text: str) -> bool:
    for match in _ENCODED.finditer(text):
        chunk = match.group(0)
        if chunk.startswith(("\\x", "%")):
            return True
        try:
            base64.b64decode(chunk + "=" * (-len(chunk) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        if not chunk.isalpha():  # a long word is not a payload; base64 mixes cases, digits, + and /
            return True
    return False
