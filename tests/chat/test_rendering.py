"""A model's Markdown is rendered, and nothing in it can run script, load anything or link anywhere
but http(s) and mail: tested with hostile model output."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from chat.models import Message
from chat.rendering import ALLOWED_TAGS, reply_html
from chat.services import conversation_start


def test_lists_code_and_links_are_rendered():
    html = reply_html(
        "Try this:\n\n- one\n- **two**\n\n```python\nprint('<hi>')\n```\n\n[docs](https://example.com)"
    )
    assert "<ul>" in html and "<li><strong>two</strong></li>" in html
    assert "<pre><code" in html and "print('&lt;hi&gt;')" in html
    assert 'href="https://example.com"' in html and 'rel="noopener noreferrer nofollow"' in html


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](jav&#x61;script:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[click](vbscript:msgbox(1))",
        "<javascript:alert(1)>",
        "![x](javascript:alert(1))",
        "![tracker](https://evil.example/pixel.gif)",
        '<a href="javascript:alert(1)">x</a>',
        '<iframe src="https://evil.example"></iframe>',
        "<style>body{display:none}</style>",
        '<div onclick="alert(1)">x</div>',
        "<svg><script>alert(1)</script></svg>",
        '[x](https://ok.example "title" onmouseover="alert(1)")',
        "<form action=https://evil.example><input name=p></form>",
    ],
)
def test_hostile_model_output_cannot_run_or_load_anything(hostile):
    html = reply_html(f"Here you go: {hostile}\n\n{hostile}")
    elements = _elements(html)
    assert {tag for tag, _ in elements} <= ALLOWED_TAGS, html
    for _tag, attributes in elements:
        assert set(attributes) <= {"href", "title", "rel", "start", "align"}, html
        href = (attributes.get("href") or "https://").strip().lower()
        assert href.startswith(("https://", "http://", "mailto:")), html


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def _elements(html: str) -> list[tuple[str, dict]]:
    """The real elements of `html` (escaped text is text, not a tag)."""
    parser = _Elements()
    parser.feed(html)
    return parser.found


def test_the_conversation_page_renders_the_reply_and_escapes_the_user(alice, alice_client):
    from django.utils import timezone

    conversation = conversation_start(user=alice)

    Message.objects.create(
        conversation=conversation,
        role="user",
        content="<b>mine</b> *not markdown*",
        created_at=timezone.now(),
    )
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        content="**Bold** and <script>alert(1)</script> and [x](javascript:alert(1))",
        created_at=timezone.now(),
    )
    page = alice_client.get(f"/chat/{conversation.pk}/").content.decode()
    assert "<strong>Bold</strong>" in page
    assert "&lt;b&gt;mine&lt;/b&gt; *not markdown*" in page
    assert "<script>alert(1)" not in page and 'href="javascript' not in page
