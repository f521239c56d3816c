"""Reading and normalising LoCoMo-format JSON: conversations, their dated sessions of turns, and
questions.

Only the turns and the session dates are read; the data set's observations and summaries are
ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

SCORED_CATEGORIES = (1, 2, 3, 4)  # 5 is adversarial (no answer in the conversation): not scored
CATEGORY_NAMES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}

_SESSION_KEY = re.compile(r"session_(\d+)")
_DIA_ID = re.compile(r"D:?(\d+):(\d+)", re.I)
_EVIDENCE_SPLIT = re.compile(r"[;,\s]+")
_DATE_FORMATS = (
    "%I:%M %p on %d %B, %Y",
    "%I:%M %p on %d %B %Y",
    "%I:%M %p on %d %b, %Y",
    "%I:%M %p on %d %b %Y",
)


class DatasetError(ValueError):
    """The file is not LoCoMo-format data."""


@dataclass(frozen=True)
class Turn:
    dia_id: str
    speaker: str
    content: str


@dataclass(frozen=True)
class Session:
    number: int
    started_at: datetime
    turns: list[Turn]


@dataclass(frozen=True)
class Question:
    text: str
    category: int
    evidence: list[str]  # normalised dia_ids that exist in the conversation
    invalid_evidence: int  # evidence ids dropped because the conversation has no such turn


@dataclass(frozen=True)
class Sample:
    sample_id: str
    speakers: tuple[str, str]
    sessions: list[Session]
    questions: list[Question] = field(default_factory=list)

    @property
    def turns(self) -> list[Turn]:
        return [turn for session in self.sessions for turn in session.turns]


def load(path: Path) -> list[Sample]:
    """Every conversation in the file, in file order."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"Cannot read {path}: {exc}") from exc
    if not isinstance(data, list):
        raise DatasetError(f"{path} holds no list of conversations.")
    return [parse_sample(raw, index) for index, raw in enumerate(data)]


def parse_sample(raw: dict, index: int = 0) -> Sample:
    if not isinstance(raw, dict) or not isinstance(raw.get("conversation"), dict):
        raise DatasetError(f"Conversation #{index} has no 'conversation' object.")
    conversation = raw["conversation"]
    sample_id = str(raw.get("sample_id") or f"conv-{index}")
    sessions = _sessions(conversation, sample_id)
    known = {turn.dia_id for session in sessions for turn in session.turns}
    questions = [_question(q, known) for q in raw.get("qa") or [] if isinstance(q, dict)]
    speakers = (str(conversation.get("speaker_a", "")), str(conversation.get("speaker_b", "")))
    return Sample(sample_id=sample_id, speakers=speakers, sessions=sessions, questions=questions)


def _sessions(conversation: dict, sample_id: str) -> list[Session]:
    numbers = sorted(
        int(m.group(1))
        for key, value in conversation.items()
        if (m := _SESSION_KEY.fullmatch(key)) and isinstance(value, list)
    )
    sessions = []
    for number in numbers:
        raw_date = conversation.get(f"session_{number}_date_time")
        try:
            started_at = parse_session_date(str(raw_date))
        except ValueError as exc:
            raise DatasetError(f"{sample_id} session {number}: {exc}") from exc
        turns = [_turn(t) for t in conversation[f"session_{number}"] if isinstance(t, dict)]
        sessions.append(
            Session(number=number, started_at=started_at, turns=[t for t in turns if t.content])
        )
    return sessions


def parse_session_date(text: str) -> datetime:
    """'1:56 pm on 8 May, 2023' as an aware datetime (UTC: the data set gives no time zone)."""
    cleaned = " ".join(text.replace(",", ", ").split()).replace(" ,", ",")
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(cleaned, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"unreadable session date {text!r}")


def _turn(raw: dict) -> Turn:
    return Turn(
        dia_id=normalise_dia_id(str(raw.get("dia_id", ""))),
        speaker=str(raw.get("speaker", "")).strip(),
        content=turn_content(str(raw.get("text") or ""), raw.get("blip_caption")),
    )


def turn_content(text: str, caption: object = None) -> str:
    """The turn's text; a shared photo is described by its caption, as the data set's own baselines
    do."""
    content = text.strip()
    if isinstance(caption, str) and caption.strip():
        content = f"{content} [shares a photo: {caption.strip()}]".strip()
    return content


def normalise_dia_id(raw: str) -> str:
    """'D:11:26' → 'D11:26', 'D30:05' → 'D30:5', ' d3:4 ' → 'D3:4'; anything else is returned
    stripped."""
    raw = raw.strip()
    match = _DIA_ID.fullmatch(raw)
    return f"D{int(match.group(1))}:{int(match.group(2))}" if match else raw


def normalise_evidence(raw: object) -> list[str]:
    """A question's evidence as a list of distinct dia_ids; one string may hold several ('D8:6;
    D9:17')."""
    values = raw if isinstance(raw, list) else [raw] if isinstance(raw, str) else []
    ids: list[str] = []
    for value in values:
        for part in _EVIDENCE_SPLIT.split(str(value)):
            dia_id = normalise_dia_id(part)
            if dia_id and dia_id not in ids:
                ids.append(dia_id)
    return ids


def _question(raw: dict, known: set[str]) -> Question:
    evidence = normalise_evidence(raw.get("evidence"))
    valid = [e for e in evidence if e in known]
    try:
        category = int(raw.get("category", 0))
    except (TypeError, ValueError):
        category = 0
    return Question(
        text=str(raw.get("question", "")).strip(),
        category=category,
        evidence=valid,
        invalid_evidence=len(evidence) - len(valid),
    )
