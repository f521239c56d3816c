"""Forget everything: every app's data of a user (walking the privacy registry, memoryweb.privacy),
and optionally the account. The accounts app's own area: the account's part of the data export, and
the data exports themselves, with where their files live (so erasure reaches them too)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.db import transaction

from accounts.models import (
    AccessEvent,
    ApiKey,
    AppGrant,
    ConsentRecord,
    DataExport,
    ErasureReceipt,
    RegisteredApp,
)
from accounts.receipts import SignedReceipt, receipt_issue
from accounts.selectors import memory_settings_get
from accounts.services import lock_user
from memoryweb.privacy import Erasure, PrivacyArea, areas, register

logger = logging.getLogger(__name__)

FORGET_PHRASE = "forget everything"  # typed to confirm, on the page and in the API


def forget_everything(*, user, delete_account: bool) -> SignedReceipt:
    """Erase every conversation, message, memory (with revisions), episode, summary and digest of
    `user`, and every data export (files and rows); with `delete_account`, the account too
    (consents, API keys, access log, settings). The records of consent and access stay while the
    account does: they are the account's own history. Last, the user's data key is destroyed, so
    that copies of their encrypted text elsewhere (a replica, a dump) cannot be read; a new key is
    made if they write again.

    Each app's area is erased, newest app first (the reverse of INSTALLED_APPS: chat, memories, the
    data exports, then the vault's key), so that an app's data goes before the data it was built
    on. Returns the signed erasure receipt: kept for the user to download (earlier receipts stay:
    they are the proof), or, with the account deleted, not kept (it would go with it)."""
    erasure = Erasure()
    with transaction.atomic():
        lock_user(user)  # serialize with every other writer of this user's memory
        for area in reversed(areas()):
            erasure.add(area.erase(user=user))
        if delete_account:
            erasure.deleted(user.delete())
        kind = (
            ErasureReceipt.Kind.ACCOUNT_DELETED
            if delete_account
            else ErasureReceipt.Kind.FORGET_EVERYTHING
        )
        receipt = receipt_issue(user=user, kind=kind, erasure=erasure, store=not delete_account)
    logger.info("user %s: forgot everything (account deleted: %s)", user.pk, delete_account)
    return receipt


@register
class AccountArea(PrivacyArea):
    """The account, its settings, consents, access log, API keys, grants and admin actions
    (exported; erased only with the account itself), and the user's data exports (erased with
    everything else)."""

    label = "account"

    def export(self, user) -> dict[str, Any]:
        return export_user_data(user=user)

    def erase(self, user) -> Erasure:
        return erase_export_data(user=user)


# --- Export files ---------------------------------------------------------------------------------


def exports_dir() -> Path:
    """The folder of export archives, DATA_DIR/exports (created private on first use)."""
    path = Path(settings.DATA_DIR) / "exports"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def export_file_name(*, user_id: int, token: str) -> str:
    """An export archive's name in exports_dir(): `<user id>-<token>.zip` (`.part` added while
    written)."""
    return f"{user_id}-{token}.zip"


def export_paths(*, user_id: int, token: str) -> tuple[Path, Path]:
    """Where an export's archive is, and where it is written before it is complete."""
    path = exports_dir() / export_file_name(user_id=user_id, token=token)
    return path, path.with_name(path.name + ".part")


def export_files_delete(*, exports) -> int:
    """Delete the archives of these exports, complete or half-written; returns how many files
    went."""
    deleted = 0
    for export in exports:
        for path in export_paths(user_id=export.user_id, token=export.token):
            if path.exists():
                path.unlink(missing_ok=True)
                deleted += 1
    return deleted


@transaction.atomic
def erase_export_data(*, user) -> Erasure:
    """Delete all of `user`'s data exports: the archives on disk and their rows. A build still
    running finds its row gone when it finishes, and deletes what it wrote."""
    exports = list(DataExport.objects.for_user(user).only("pk", "user_id", "token"))
    erasure = Erasure()
    erasure.deleted(DataExport.objects.filter(pk__in=[x.pk for x in exports]).delete())
    erasure.counts["export_files"] += export_files_delete(exports=exports)
    return erasure


# --- The account's part of the export -------------------------------------------------------------

_ADMIN_ACTIONS = {ADDITION: "addition", CHANGE: "change", DELETION: "deletion"}


def export_user_data(*, user) -> dict[str, Any]:
    """Everything the accounts app keeps about `user`: the account (never the password hash), memory
    settings, consent records, the access log, API keys (never their hashes), grants to apps, data
    exports (never their tokens), actions the user took as an administrator (without the changed
    object's text) and the signed erasure receipts."""
    return {
        "account": _account(user),
        "memory_settings": _memory_settings(user),
        "consents": [
            {
                "id": c.pk,
                "purpose": c.purpose,
                "granted": c.granted,
                "policy_version": c.policy_version,
                "method": c.method,
                "created_at": c.created_at,
            }
            for c in ConsentRecord.objects.for_user(user).order_by("created_at", "id")
        ],
        "access_events": [
            {
                "id": e.pk,
                "actor": e.actor,
                "purpose": e.purpose,
                "conversation_id": e.conversation_id,
                "api_key_id": e.api_key_id,
                "app_id": e.app_id,
                "items": e.items,
                "created_at": e.created_at,
            }
            for e in AccessEvent.objects.for_user(user).order_by("created_at", "id")
        ],
        "api_keys": [
            {
                "id": k.pk,
                "name": k.name,
                "prefix": k.prefix,
                "created_at": k.created_at,
                "last_used_at": k.last_used_at,
                "revoked_at": k.revoked_at,
                "scopes": k.scopes,
                "expires_at": k.expires_at,
            }
            for k in ApiKey.objects.for_user(user).order_by("created_at", "id")
        ],
        "oauth": _oauth(user),
        "app_grants": [
            {
                "id": g.pk,
                "app_id": g.app_id,
                "app_name": g.app.name,
                "scopes": g.scopes,
                "created_at": g.created_at,
                "revoked_at": g.revoked_at,
            }
            for g in AppGrant.objects.for_user(user)
            .select_related("app")
            .order_by("created_at", "id")
        ],
        "exports": [
            {
                "id": x.pk,
                "status": x.status,
                "progress": x.progress,
                "error": x.error,
                "created_at": x.created_at,
                "started_at": x.started_at,
                "finished_at": x.finished_at,
                "expires_at": x.expires_at,
            }
            for x in DataExport.objects.for_user(user).order_by("created_at", "id")
        ],
        "admin_actions": [
            {
                "id": entry.pk,
                "action_time": entry.action_time,
                "action_flag": _ADMIN_ACTIONS.get(entry.action_flag, str(entry.action_flag)),
                "content_type": entry.content_type
                and f"{entry.content_type.app_label}.{entry.content_type.model}",
                "object_id": entry.object_id,
                "change_message": entry.get_change_message(),
            }
            for entry in LogEntry.objects.filter(user=user)
            .select_related("content_type")
            .order_by("action_time")
        ],
        "erasure_receipts": [
            {
                "id": r.pk,
                "kind": r.kind,
                "created_at": r.created_at,
                "document": json.loads(r.document),
            }
            for r in ErasureReceipt.objects.for_user(user).order_by("created_at", "id")
        ],
    }


def _account(user) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "time_zone": user.time_zone,
        "date_joined": user.date_joined,
        "last_login": user.last_login,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "permissions": sorted(
            f"{app}.{codename}"
            for app, codename in user.user_permissions.values_list(
                "content_type__app_label", "codename"
            )
        ),
    }


def _memory_settings(user) -> dict[str, Any]:
    current = memory_settings_get(user=user)
    return {
        "memory_enabled": current.memory_enabled,
        "use_past_chats": current.use_past_chats,
        "temporary_chat_hours": current.temporary_chat_hours,
        "updated_at": current.updated_at,  # None: never changed (the defaults)
    }


def _oauth(user) -> dict[str, list]:
    """What OAuth (MCP clients, accounts.oauth) keeps about `user`: tokens, codes and clients they own,
    never a token, code or secret (only when and what for)."""
    from oauth2_provider import models as oauth  # django-oauth-toolkit's models, read only here

    def rows(model, *fields):
        return list(model.objects.filter(user=user).order_by("id").values("id", *fields))

    clients = rows(
        oauth.Application,
        "client_id",
        "name",
        "redirect_uris",
        "post_logout_redirect_uris",
        "client_type",
        "authorization_grant_type",
        "skip_authorization",
        "created",
        "updated",
        "algorithm",
        "allowed_origins",
        "registration_source",
        "cimd_expires_at",
    )
    apps = {
        a["oauth_application"]: a
        for a in RegisteredApp.objects.filter(oauth_application__user=user).values(
            "id",
            "name",
            "description",
            "prefix",
            "created_at",
            "last_used_at",
            "disabled_at",
            "self_registered",
            "oauth_application",
        )
    }
    for client in clients:
        app = apps.get(client["id"])
        client["app"] = [{k: v for k, v in app.items() if k != "oauth_application"}] if app else []
    return {
        "clients": clients,
        "tokens": rows(
            oauth.AccessToken,
            "application_id",
            "scope",
            "resource",
            "expires",
            "created",
            "updated",
            "source_refresh_token_id",
            "id_token_id",
        ),
        "refresh_tokens": rows(
            oauth.RefreshToken,
            "application_id",
            "access_token_id",
            "token_family",
            "resource",
            "created",
            "updated",
            "revoked",
        ),
        "codes": rows(
            oauth.Grant,
            "application_id",
            "expires",
            "redirect_uri",
            "scope",
            "created",
            "updated",
            "code_challenge_method",
            "resource",
            "nonce",
            "claims",
        ),
        "id_tokens": rows(
            oauth.IDToken, "application_id", "jti", "expires", "scope", "created", "updated"
        ),
        "device_grants": rows(
            oauth.DeviceGrant,
            "client_id",
            "scope",
            "interval",
            "expires",
            "status",
            "last_checked",
        ),
    }
