"""The one vocabulary of what an API client may do: the scopes that registered apps' grants and
personal API keys hold, and the scope each API view requires for each method (`required_scopes`).

A view declares `required_scopes = {"GET": Scope.CONTEXT_READ, ...}` for every method it answers;
a method it does not declare is refused to every scoped client (fail closed). A browser session is
the user in person and holds every scope. Apps may hold only `APP_SCOPES`.
"""

from __future__ import annotations

from django.db import models


class Scope(models.TextChoices):
    CONTEXT_READ = "context:read", "Read my memories, profile and context"
    MEMORIES_WRITE = (
        "memories:write",
        "Add facts and observations to my memory, and forget one memory when I ask",
    )
    MEMORIES_MANAGE = (
        "memories:manage",
        "Remember, correct, report and delete my memories, and read their history",
    )
    CHAT = "chat", "Chat as me, and read, end and delete my conversations"
    ACCOUNT_SETTINGS = (
        "account:settings",
        "Read and change my memory settings and time zone, and read my access log",
    )
    ACCOUNT_CONSENT = "account:consent", "Read, grant and withdraw my consents"
    ACCOUNT_EXPORT = "account:export", "Export all my data and download the export"
    ACCOUNT_IMPORT = (
        "account:import",
        "Import my ChatGPT and Claude history, and delete what an import brought",
    )
    ACCOUNT_ERASE = (
        "account:erase",
        "Forget everything, delete my account, and read my erasure receipts",
    )
    ACCOUNT_KEYS = "account:keys", "List and revoke my API keys"


ALL_SCOPES: tuple[str, ...] = tuple(Scope.values)
# What a registered app may ever be granted: reading context and pushing facts, nothing of the
# account, the chat or the memories' history.
APP_SCOPES: tuple[str, ...] = (Scope.CONTEXT_READ.value, Scope.MEMORIES_WRITE.value)


def scopes_validate(scopes, *, allowed: tuple[str, ...] = ALL_SCOPES) -> list[str]:
    """`scopes` sorted and without repeats; ValueError unless a non-empty subset of `allowed`."""
    chosen = sorted(set(scopes))
    if not chosen or not set(chosen) <= set(allowed):
        raise ValueError(f"scopes must be a non-empty subset of {allowed}")
    return chosen


def required_scope(view, method: str) -> str | None:
    """The scope `view` requires for `method` (HEAD as GET); None: undeclared, so refused to scoped
    clients."""
    declared = getattr(view, "required_scopes", {})
    return declared.get("GET" if method == "HEAD" else method)
