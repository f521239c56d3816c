"""Replies as the model writes them, shown safely: its Markdown (lists, code blocks, links) rendered
by markdown-it-py with raw HTML off, then sanitised by nh3 (Rust's ammonia) to a short list of tags,
with only http, https and mailto links. A model's output is untrusted text: it may quote whatever
was pasted into the chat."""

from __future__ import annotations

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

_MARKDOWN = MarkdownIt(
    "commonmark", {"html": False, "linkify": False, "typographer": False}
).enable("table")
ALLOWED_TAGS = {
    "p", "br", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}


def reply_html(text: str) -> SafeString:
    """The reply's Markdown as HTML that can only show text, formatting and ordinary links (opened
    with rel="noopener noreferrer nofollow")."""
    html = _MARKDOWN.render(text)
    return mark_safe(  # noqa: S308 - sanitised by nh3 just here
        nh3.clean(
            html,
            tags=ALLOWED_TAGS,
            attributes=ALLOWED_ATTRIBUTES,
            url_schemes=URL_SCHEMES,
            link_rel="noopener noreferrer nofollow",
        )
    )
