"""Fixtures for the language-model path: a scripted OpenAI-compatible server on 127.0.0.1, and
settings that point the real `openai` client at it."""

from __future__ import annotations

import pytest

from memoryweb.ai import embeddings, llm
from tests.ai.openai_server import TIMEOUT, OpenAIServer


@pytest.fixture
def openai_server(_offline_and_eager, settings):
    """The server, running; settings' OPENAI_BASE_URL points at it but no key is configured
    (offline)."""
    server = OpenAIServer().start()
    settings.OPENAI_BASE_URL = server.base_url
    yield server
    server.stop()
    llm._client.cache_clear()  # drop clients bound to this (now closed) port
    embeddings._embed_query_cached.cache_clear()


@pytest.fixture
def llm_server(openai_server, settings):
    """The server, with a model configured: every model call of the app goes to it over real HTTP.
    Fails the test's teardown if the app made a request nothing was scripted for."""
    settings.OPENAI_API_KEY = "test-key"
    settings.LLM_CHAT_MODEL = "test-chat"
    settings.LLM_EXTRACTION_MODEL = "test-extract"
    settings.LLM_TIMEOUT_SECONDS = TIMEOUT
    settings.LLM_MAX_RETRIES = 0
    settings.EMBEDDING_BACKEND = "local"
    yield openai_server
    unscripted = [(r.path, r.messages[-1:] or r.body) for r in openai_server.unscripted]
    assert not unscripted, f"the app made requests the test did not script: {unscripted}"
