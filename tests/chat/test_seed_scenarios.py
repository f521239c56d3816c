"""The seed's failure patterns, walked as a new user would: sign up with the one memory box ticked (the
defaults), chat offline through the pages, end the conversation, come back in a new one. The offline
reply lists what the assistant recalled, so what it remembered is what the reply says."""

from __future__ import annotations

import pytest

from tests.chat import seed


@pytest.fixture
def newcomer(db, run_on_commit):
    """A new user on the defaults; each call a conversation, ended, and its last reply."""
    talk = seed.newcomer(run_on_commit)

    def conversation(*messages: str) -> str:
        return talk(*messages).messages.filter(role="assistant").latest("created_at").content

    return conversation


def test_preference_amnesia_the_diet_is_known_in_the_next_conversation(newcomer):
    newcomer(seed.INTRO)
    reply = newcomer(seed.DINNER)
    assert "vegetarian" in reply


def test_project_reset_the_problem_is_known_the_next_day(newcomer):
    newcomer(seed.INTRO, seed.PROJECT)
    reply = newcomer(seed.PROJECT_LATER)
    assert "struggling with database connection pooling" in reply
    assert "FastAPI" in reply and "vegetarian" in reply


def test_project_reset_the_business_is_known(newcomer):
    newcomer("My startup builds invoicing software for dentists. We use Django and Stripe.")
    reply = newcomer("Tell me about my business, what do you know?")
    assert "invoicing software for dentists" in reply


def test_expert_to_novice_a_term_defined_once_is_known_later(newcomer):
    newcomer(seed.TERM)
    reply = newcomer(seed.TERM_LATER)
    assert "one-week research task" in reply
