"""The language model: any OpenAI-compatible endpoint through the `openai` SDK, or none (offline).

With no OPENAI_API_KEY nothing here touches the network: `is_configured()` is False and callers use
their offline path (rule-based extraction, the offline composer in chat.prompts).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from functools import lru_cache

import openai
from django.conf import settings
from openai.types.chat import ChatCompletion

logger = logging.getLogger(__name__)


class LLMError(Exception):
    """The model could not give a usable answer (timeout, HTTP error, refusal, malformed output)."""


def is_configured() -> bool:
    return bool(settings.OPENAI_API_KEY)


@lru_cache(maxsize=4)
def _client(api_key: str, base_url: str | None, timeout: float, max_retries: int) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
    )


def client() -> openai.OpenAI:
    if not is_configured():
        raise LLMError("No language model is configured (OPENAI_API_KEY is empty).")
    return _client(
        settings.OPENAI_API_KEY,
        settings.OPENAI_BASE_URL,
        settings.LLM_TIMEOUT_SECONDS,
        settings.LLM_MAX_RETRIES,
    )


def complete(messages: list[dict], *, model: str | None = None) -> str:
    """One chat completion; returns the reply text. Raises LLMError on any failure."""
    try:
        response = client().chat.completions.create(
            model=model or settings.LLM_CHAT_MODEL, messages=messages
        )
    except (openai.OpenAIError, ValueError) as exc:  # ValueError: a body that is not JSON
        raise LLMError(f"The language model failed: {type(exc).__name__}") from exc
    _check_completion(response)
    choice = response.choices[0] if response.choices else None
    content = (choice.message.content or "").strip() if choice else ""
    if not content:
        refusal = getattr(choice.message, "refusal", None) if choice else None
        raise LLMError(
            "The language model refused." if refusal else "The language model returned no text."
        )
    return content


def stream(messages: list[dict], *, model: str | None = None) -> Iterator[str]:
    """One chat completion, streamed: yields the reply's text as it arrives. Raises LLMError on any
    failure, also midway (the caller keeps what came before); a stream with no text at all is a
    failure too."""
    received = False
    try:
        response = client().chat.completions.create(
            model=model or settings.LLM_CHAT_MODEL, messages=messages, stream=True
        )
        for chunk in response:
            choice = chunk.choices[0] if getattr(chunk, "choices", None) else None
            text = (
                (choice.delta.content or "")
                if choice is not None and choice.delta is not None
                else ""
            )
            if text:
                received = True
                yield text
    except (openai.OpenAIError, ValueError) as exc:
        raise LLMError(f"The language model failed: {type(exc).__name__}") from exc
    if not received:
        raise LLMError("The language model returned no text.")


def structured(messages: list[dict], *, name: str, schema: dict, model: str | None = None) -> dict:
    """A JSON object matching `schema`, from one structured-output call.

    Uses JSON-schema mode; an endpoint that rejects it (HTTP 400) is asked again in plain JSON mode
    with the schema in the prompt. Output that does not parse is retried once with a repair
    instruction. Raises LLMError when no valid object could be had.
    """
    model = model or settings.LLM_EXTRACTION_MODEL
    formats = [
        {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": False}},
        {"type": "json_object"},
    ]
    last_error: Exception | None = None
    for response_format in formats:
        attempt_messages = list(messages)
        if response_format["type"] == "json_object":
            attempt_messages.append(
                {
                    "role": "system",
                    "content": "Answer with one JSON object matching this schema:\n"
                    + json.dumps(schema),
                }
            )
        for _ in range(2):
            try:
                response = client().chat.completions.create(
                    model=model, messages=attempt_messages, response_format=response_format
                )
            except openai.BadRequestError as exc:
                last_error = exc
                logger.info(
                    "endpoint rejected response_format=%s; trying the next mode",
                    response_format["type"],
                )
                break
            except (openai.OpenAIError, ValueError) as exc:
                raise LLMError(f"The language model failed: {type(exc).__name__}") from exc
            _check_completion(response)
            content = (response.choices[0].message.content or "") if response.choices else ""
            try:
                value = json.loads(_strip_fences(content))
            except json.JSONDecodeError as exc:
                last_error = exc
                attempt_messages = [
                    *attempt_messages,
                    {"role": "assistant", "content": content[:4000]},
                    {
                        "role": "user",
                        "content": "That was not valid JSON. Reply with the JSON object only.",
                    },
                ]
                continue
            if isinstance(value, dict):
                return value
            last_error = ValueError("top-level JSON value is not an object")
    # Only the error's type: its text may quote the prompt or the output (user text stays out of
    # logs).
    raise LLMError(f"No valid structured output ({type(last_error).__name__})")


def _check_completion(response: object) -> None:
    # A misconfigured endpoint (an HTML page, say) makes the SDK hand back a plain string.
    if not isinstance(response, ChatCompletion):
        raise LLMError("The language model returned an unreadable response.")


def _strip_fences(text: str) -> str:
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text.strip()
