"""The privacy export: every model holding user data is in it (found by walking the models), it
validates against accounts/export_schema.json, it is built by a task with progress, only its owner
can download it, the link expires and the file goes, and "forget everything" deletes it."""

from __future__ import annotations

import io
import json
import os
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
from django.apps import apps
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from accounts.connected_apps import app_grant, app_register
from accounts.export import document as document_service
from accounts.export import jobs as export_service
from accounts.export.document import export_document
from accounts.export.jobs import export_request, exports_cleanup
from accounts.export.manifest import EXPORTED_MODELS, OMITTED_FIELDS
from accounts.models import AccessEvent, ApiKey, DataExport
from accounts.privacy import forget_everything
from accounts.tasks import build_export
from chat.models import Conversation, Message
from chat.services import chat_turn, conversation_delete, conversation_end
from imports.services import import_upload
from memories.models import Episode, Memory, MemoryRevision
from memories.summaries import user_digest
from tests.imports.exports import as_json, sample_claude

SCHEMA = json.loads((Path(export_service.__file__).parents[1] / "export_schema.json").read_text())


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.EXPORT_LINK_HOURS = 24


def _oauth_rows(user) -> None:
    """One row of each of django-oauth-toolkit's models for `user`: a client of theirs (as an
    app), a token, a refresh token, a code, an ID token and a device grant."""
    from oauth2_provider import models as oauth

    from accounts.oauth import oauth_app_register

    client = oauth.Application.objects.create(
        user=user,
        name="Alice's script",
        client_type="public",
        authorization_grant_type="authorization-code",
        redirect_uris="http://127.0.0.1:9000/cb",
    )
    oauth_app_register(application=client)
    later = timezone.now() + timedelta(hours=1)
    mine = {"user": user, "application": client}
    id_token = oauth.IDToken.objects.create(**mine, jti=uuid.uuid4(), expires=later)
    access = oauth.AccessToken(**mine, id_token=id_token, expires=later, scope="context:read")
    oauth.set_token_value(access, "mwoat_export-test")
    access.save()
    refresh = oauth.RefreshToken(**mine, access_token=access)
    oauth.set_token_value(refresh, "mwort_export-test")
    refresh.save()
    oauth.Grant.objects.create(
        **mine,
        code="c0de",
        expires=later,
        redirect_uri="http://127.0.0.1:9000/cb",
        code_challenge="x" * 43,
        code_challenge_method="S256",
    )
    oauth.DeviceGrant.objects.create(
        user=user, client_id=client.client_id, device_code="d", user_code="u", expires=later
    )


@pytest.fixture
def full_alice(alice, alice_api, run_on_commit):
    """Alice with at least one row of every kind: a superseded memory, recalls, summaries, a digest,
    an API read, a grant to an app, an admin action, a group and a permission, an earlier
    export and an erasure receipt."""
    run_on_commit(chat_turn, user=alice, conversation=None, text="I live in Paris.")
    run_on_commit(chat_turn, user=alice, conversation=None, text="I live in Berlin.")
    jazz = run_on_commit(chat_turn, user=alice, conversation=None, text="I like jazz.")
    conversation_delete(user=alice, conversation=jazz.conversation, receipt=True)
    first = run_on_commit(
        chat_turn, user=alice, conversation=None, text="Remember that I'm vegetarian."
    ).conversation
    turn = run_on_commit(
        chat_turn, user=alice, conversation=first, text="Any <script>dinner</script> ideas?"
    )
    run_on_commit(conversation_end, conversation=first)
    user_digest(user=alice, period_end=timezone.now() + timedelta(seconds=1))
    alice_api.post("/api/v1/context", {"query": "dinner"}, format="json")
    app_grant(user=alice, app=app_register(name="Calendar")[0], scopes=["context:read"])
    _oauth_rows(alice)
    LogEntry.objects.create(
        user=alice,
        content_type=ContentType.objects.get_for_model(Memory),
        object_id="1",
        object_repr="someone else's memory",
        action_flag=ADDITION,
        change_message="[]",
    )
    alice.groups.add(Group.objects.create(name="testers"))
    alice.user_permissions.add(Permission.objects.get(codename="view_memory"))
    DataExport.objects.create(user=alice, status=DataExport.Status.EXPIRED, progress=100)
    upload = SimpleUploadedFile("conversations.json", as_json(sample_claude()))
    run_on_commit(import_upload, user=alice, upload=upload)
    assert turn.reply.recalls.exists()
    assert Memory.objects.filter(user=alice, superseded_by__isnull=False).exists()
    assert {"summary", "digest", "turn"} <= set(
        Episode.objects.for_user(alice).values_list("kind", flat=True)
    )
    return alice


def _user_fk_fields(model) -> list:
    return [
        f
        for f in model._meta.concrete_fields
        if f.is_relation and f.related_model is get_user_model()
    ]


def _label(model) -> str:
    """A proxy model's rows are its concrete model's: they are exported there."""
    return model._meta.concrete_model._meta.label


def _models_with_a_user_key() -> set[str]:
    """Every model with a ForeignKey or OneToOneField straight to the user model."""
    return {_label(m) for m in apps.get_models() if _user_fk_fields(m)}


def _models_holding_user_data() -> set[str]:
    """Every model reachable from the user through foreign keys (messages via conversations,
    revisions via memories, ...), many-to-many tables included, and the user model itself."""
    owned = {get_user_model()}
    candidates = apps.get_models(include_auto_created=True)
    grew = True
    while grew:
        grew = False
        for model in candidates:
            if model not in owned and any(
                f.is_relation and f.related_model in owned for f in model._meta.concrete_fields
            ):
                owned.add(model)
                grew = True
    return {_label(m) for m in owned}


def _unexported(labels: set[str], mapping: dict[str, str]) -> set[str]:
    return {label for label in labels if label not in mapping}


def _at(document: dict, path: str) -> list:
    """The values at a dotted path (`[]` steps into every item of a list), lists flattened."""
    values = [document]
    for step in path.split("."):
        values = [value[step.removesuffix("[]")] for value in values]
        if step.endswith("[]"):
            values = [item for value in values for item in value]
    return [item for value in values for item in (value if isinstance(value, list) else [value])]


def _archive(export: DataExport) -> zipfile.ZipFile:
    return zipfile.ZipFile(Path(export_service.exports_dir()) / export.file_name)


def _built(user) -> DataExport:
    """An export of `user`, built by the task (eagerly)."""
    export = DataExport.objects.create(user=user)
    assert build_export.delay(export.pk).get() is True
    export.refresh_from_db()
    return export


# --- What is in it --------------------------------------------------------------------------------


def test_it_exports_every_model_with_a_user_key(full_alice):
    direct = _models_with_a_user_key()
    assert {
        "chat.Conversation",
        "memories.Memory",
        "accounts.DataExport",
        "admin.LogEntry",
    } <= direct

    assert _unexported(direct, EXPORTED_MODELS) == set(), (
        "add the model to an export_user_data and EXPORTED_MODELS"
    )
    document = export_document(user=full_alice)
    for label in direct:
        assert EXPORTED_MODELS[label].split(".")[0].removesuffix("[]") in document, label


def test_it_exports_every_model_reachable_from_the_user_with_rows_where_the_table_says(full_alice):
    reachable = _models_holding_user_data()
    assert {
        "chat.Message",
        "chat.Recall",
        "memories.MemoryRevision",
        "memories.Memory_source_messages",
    } <= reachable

    assert _unexported(reachable, EXPORTED_MODELS) == set()
    assert set(EXPORTED_MODELS) == reachable  # no stale entries either
    document = export_document(user=full_alice)
    for label, path in EXPORTED_MODELS.items():
        assert _at(document, path), f"{label}: nothing at {path}"


def test_the_walk_fails_for_a_model_missing_from_the_table():
    mapping = {label: path for label, path in EXPORTED_MODELS.items() if label != "chat.Recall"}
    assert _unexported(_models_holding_user_data(), mapping) == {"chat.Recall"}


def test_it_exports_every_column_or_says_why_not(full_alice):
    document = export_document(user=full_alice)
    for label, path in EXPORTED_MODELS.items():
        model = apps.get_model(label)
        if model._meta.auto_created:
            continue  # a many-to-many table: exported as a list of ids
        keys = set().union(*(item.keys() for item in _at(document, path)))
        for field in model._meta.concrete_fields:
            if field in _user_fk_fields(model):
                continue  # the whole file is about this user
            exported = field.name in keys or field.attname in keys
            assert exported or field.name in OMITTED_FIELDS.get(label, {}), (
                f"{label}.{field.name} is not exported"
            )
            assert not (exported and field.name in OMITTED_FIELDS.get(label, {})), (
                f"{label}.{field.name} is both"
            )


@pytest.mark.parametrize("populated", [True, False])
def test_it_validates_against_the_json_schema(request, populated):
    user = request.getfixturevalue("full_alice" if populated else "bob")
    export = _built(user)

    document = json.loads(_archive(export).read("export.json"))

    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validator = jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(document)
    assert document["user_id"] == user.pk and bool(document["memories"]) is populated


@pytest.mark.parametrize(
    "definition, model, field",
    [
        ("memory", Memory, "kind"),
        ("memory", Memory, "source"),
        ("memory", Memory, "review_status"),
        ("episode", Episode, "kind"),
        ("message", Message, "role"),
        ("revision", MemoryRevision, "actor"),
        ("access_event", AccessEvent, "actor"),
        ("export", DataExport, "status"),
    ],
)
def test_the_schemas_choices_are_the_models(definition, model, field):
    enum = SCHEMA["$defs"][definition]["properties"][field]["enum"]
    assert set(enum) == {value for value, _ in model._meta.get_field(field).choices}


def test_it_exports_a_memorys_sources_and_its_superseded_history(full_alice):
    document = export_document(user=full_alice)
    memories = {m["text"]: m for m in document["memories"]}
    berlin, paris = memories["User lives in Berlin"], memories["User lives in Paris"]
    messages = {m["id"]: m for c in document["conversations"] for m in c["messages"]}

    assert berlin["current"] and not paris["current"]
    assert paris["superseded_by"] == berlin["id"] and berlin["supersedes"] == [paris["id"]]
    assert [messages[i]["content"] for i in berlin["source_message_ids"]] == ["I live in Berlin."]
    assert [r["action"] for r in paris["revisions"]] == ["add", "supersede"]
    assert paris["revisions"][-1]["new_text"] == "User lives in Berlin"


def test_it_exports_messages_recalls_and_episodes(full_alice):
    document = export_document(user=full_alice)
    messages = [m for c in document["conversations"] for m in c["messages"]]
    contents = [m["content"] for m in messages]

    assert (
        "Remember that I'm vegetarian." in contents
        and "Any <script>dinner</script> ideas?" in contents
    )
    assert len(messages) == Message.objects.for_user(full_alice).count()
    recalled = {r["memory_id"] for m in messages for r in m["recalls"]}
    assert Memory.objects.get(user=full_alice, subject="diet").pk in recalled
    summary = next(e for e in document["episodes"] if e["kind"] == "summary")
    assert summary["message_ids"] and set(summary["message_ids"]) <= {m["id"] for m in messages}
    assert any(e["kind"] == "digest" for e in document["episodes"])


def test_it_leaves_out_secrets_and_derived_data(full_alice):
    export = _built(full_alice)
    raw = _archive(export).read("export.json").decode()
    document = json.loads(raw)

    assert ApiKey.objects.get(user=full_alice).hashed_key not in raw
    assert full_alice.password not in raw and export.token not in raw
    assert "someone else's memory" not in raw
    assert not {"embedding", "search", "fingerprint"} & set(document["memories"][0])
    assert document["api_keys"][0]["prefix"].startswith("mw_")
    assert document["admin_actions"][0]["action_flag"] == "addition"


def test_the_markdown_file_is_readable_and_escapes_text(full_alice):
    markdown = _archive(_built(full_alice)).read("export.md").decode()

    assert "# Everything memoryweb keeps about you" in markdown
    assert "**User lives in Berlin**" in markdown and "replaces memory" in markdown
    assert "> Remember that I'm vegetarian." in markdown
    assert "&lt;script&gt;dinner&lt;/script&gt;" in markdown and "<script>" not in markdown
    assert "(imported from claude)" in markdown and "## Imports" in markdown


# --- Building it ----------------------------------------------------------------------------------


def test_the_task_builds_it_with_progress_to_100(alice, run_on_commit, monkeypatch):
    run_on_commit(chat_turn, user=alice, conversation=None, text="I live in Lisbon.")
    seen = []
    original = export_service._progress
    monkeypatch.setattr(
        export_service,
        "_progress",
        lambda pk, percent: (seen.append(percent), original(pk, percent)),
    )

    export = _built(alice)

    assert (export.status, export.progress, export.error) == ("ready", 100, "")
    assert seen == sorted(seen) and len(seen) >= 3
    assert export.file_name == f"{alice.pk}-{export.token}.zip"
    assert set(_archive(export).namelist()) == {"export.json", "export.md"}
    assert (
        timedelta(hours=23, minutes=59)
        < export.expires_at - export.finished_at
        <= timedelta(hours=24)
    )
    assert len(export.token) >= 40


def test_the_task_is_idempotent(alice):
    export = _built(alice)
    path = Path(export_service.exports_dir()) / export.file_name
    modified = path.stat().st_mtime_ns

    assert build_export.delay(export.pk).get() is False
    assert path.stat().st_mtime_ns == modified
    assert DataExport.objects.get(pk=export.pk).status == "ready"


def test_the_task_does_nothing_for_an_expired_export_or_a_deleted_user(alice, bob):
    expired = DataExport.objects.create(user=alice, status=DataExport.Status.EXPIRED)
    gone = DataExport.objects.create(user=bob)
    gone_id = gone.pk
    bob.delete()

    assert build_export.delay(expired.pk).get() is False
    assert build_export.delay(gone_id).get() is False
    assert DataExport.objects.get(pk=expired.pk).status == "expired"
    assert list(export_service.exports_dir().iterdir()) == []


def test_a_failed_build_is_marked_failed_and_leaves_no_file(alice, monkeypatch):
    def broken(*, user):
        raise RuntimeError("disk on fire")

    sections = document_service.export_areas()
    monkeypatch.setattr(
        document_service,
        "export_areas",
        lambda: [*sections, SimpleNamespace(label="broken", export=broken)],
    )
    export = DataExport.objects.create(user=alice)

    assert build_export.delay(export.pk).get() is False

    export.refresh_from_db()
    assert (
        export.status == "failed"
        and "could not be built" in export.error
        and "disk" not in export.error
    )
    assert list(export_service.exports_dir().iterdir()) == []


def test_an_erasure_during_the_build_leaves_no_file(alice, monkeypatch):
    original = export_service.export_markdown

    def erase_meanwhile(document):
        forget_everything(user=alice, delete_account=False)
        return original(document)

    monkeypatch.setattr(export_service, "export_markdown", erase_meanwhile)
    export = DataExport.objects.create(user=alice)

    assert build_export.delay(export.pk).get() is False
    assert not DataExport.objects.filter(pk=export.pk).exists()
    assert list(export_service.exports_dir().iterdir()) == []


def test_asking_again_while_one_is_prepared_gives_the_same_export(alice):
    first, created = export_request(user=alice)  # on_commit never runs here: it stays pending
    again, created_again = export_request(user=alice)
    assert created and not created_again and again == first
    assert DataExport.objects.for_user(alice).count() == 1


# --- The page and the download --------------------------------------------------------------------


def test_preparing_an_export_from_the_page(alice_client, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post("/accounts/privacy/export/")
    assert response.status_code == 302 and response["Location"] == "/accounts/privacy/export/"

    export = DataExport.objects.get(user=alice)
    assert (export.status, export.progress) == ("ready", 100)
    page = alice_client.get("/accounts/privacy/export/")
    html = page.content.decode()
    assert '<progress max="100" value="100">' in html
    assert f'href="/accounts/privacy/export/{export.token}/download/"' in html
    assert "Refresh" not in page and "<script" not in html


def test_the_page_refreshes_itself_while_an_export_is_prepared(alice_client, alice):
    DataExport.objects.create(user=alice, status=DataExport.Status.RUNNING, progress=40)

    page = alice_client.get("/accounts/privacy/export/")

    assert page["Refresh"] == "3"
    html = page.content.decode()
    assert (
        '<progress max="100" value="40">' in html
        and "Being prepared" in html
        and "/download/" not in html
    )


def test_the_privacy_nav_links_the_export_page(alice_client):
    assert (
        b'href="/accounts/privacy/export/"'
        in alice_client.get("/accounts/privacy/settings/").content
    )


def test_the_owner_downloads_the_zip(alice_client, alice):
    export = _built(alice)

    response = alice_client.get(f"/accounts/privacy/export/{export.token}/download/")

    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert (
        response["Content-Disposition"].startswith("attachment;")
        and "memoryweb-export-alice" in response["Content-Disposition"]
    )
    assert "no-store" in response["Cache-Control"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert json.loads(archive.read("export.json"))["account"]["username"] == "alice"


def test_bob_gets_404_for_alices_export(alice, bob_client):
    export = _built(alice)

    assert bob_client.get(f"/accounts/privacy/export/{export.token}/download/").status_code == 404
    assert export.token not in bob_client.get("/accounts/privacy/export/").content.decode()


def test_an_unfinished_export_or_an_unknown_token_is_404(alice_client, alice):
    pending = DataExport.objects.create(user=alice)
    assert (
        alice_client.get(f"/accounts/privacy/export/{pending.token}/download/").status_code == 404
    )
    assert alice_client.get("/accounts/privacy/export/not-a-token/download/").status_code == 404


def test_an_expired_link_is_refused_and_its_file_deleted(alice_client, alice):
    export = _built(alice)
    path = Path(export_service.exports_dir()) / export.file_name
    DataExport.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = alice_client.get(f"/accounts/privacy/export/{export.token}/download/")

    assert response.status_code == 410 and b"This download link has expired" in response.content
    assert not path.exists()
    assert DataExport.objects.get(pk=export.pk).status == "expired"
    assert b"Link expired" in alice_client.get("/accounts/privacy/export/").content
    assert alice_client.get(f"/accounts/privacy/export/{export.token}/download/").status_code == 410


@pytest.mark.parametrize(
    "url", ["/accounts/privacy/export/", "/accounts/privacy/export/abc/download/"]
)
def test_anonymous_users_are_sent_to_log_in(db, url):
    response = Client().get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_an_anonymous_post_prepares_nothing(db):
    response = Client().post("/accounts/privacy/export/")
    assert response.status_code == 302 and not DataExport.objects.exists()


# --- Cleanup and erasure --------------------------------------------------------------------------


def test_cleanup_expires_old_exports_and_picks_up_lost_ones(alice, bob, charlie):
    ready = _built(alice)
    DataExport.objects.filter(pk=ready.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    long_ago = timezone.now() - timedelta(hours=2)
    stuck = DataExport.objects.create(user=bob, status=DataExport.Status.RUNNING)
    DataExport.objects.filter(pk=stuck.pk).update(started_at=long_ago)
    lost = DataExport.objects.create(user=charlie)
    DataExport.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    orphan = export_service.exports_dir() / f"{bob.pk}-leftover.zip.part"
    orphan.write_bytes(b"half")
    fresh = export_service.exports_dir() / f"{bob.pk}-justnow.zip.part"
    fresh.write_bytes(b"being written")
    old = (timezone.now() - timedelta(minutes=10)).timestamp()
    os.utime(orphan, (old, old))

    result = exports_cleanup()

    assert result == {"expired": 1, "failed": 1, "requeued": 1, "orphans": 1}
    assert DataExport.objects.get(pk=ready.pk).status == "expired"
    assert not (Path(export_service.exports_dir()) / ready.file_name).exists()
    assert DataExport.objects.get(pk=stuck.pk).status == "failed"
    assert DataExport.objects.get(pk=lost.pk).status == "ready"  # queued again and built (eagerly)
    assert not orphan.exists() and fresh.exists()


def test_the_cleanup_task_is_on_the_beat_schedule():
    from memoryweb.celery import app

    app.loader.import_default_modules()
    app.finalize(auto=True)
    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "accounts.tasks.cleanup_exports" in tasks


@pytest.mark.parametrize("delete_account", [False, True])
def test_forget_everything_deletes_the_export_files(alice, bob, delete_account):
    mine, theirs = _built(alice), _built(bob)
    being_written = DataExport.objects.create(user=alice, status=DataExport.Status.RUNNING)
    partial = export_service.exports_dir() / f"{alice.pk}-{being_written.token}.zip.part"
    partial.write_bytes(b"half")

    forget_everything(user=alice, delete_account=delete_account)

    files = {p.name for p in export_service.exports_dir().iterdir()}
    assert files == {theirs.file_name}
    assert not DataExport.objects.filter(user_id=alice.pk).exists()
    assert mine.file_name not in files
    assert not Conversation.objects.filter(user_id=alice.pk).exists()


def test_a_broker_down_leaves_the_export_pending_for_the_cleanup(
    alice_client, alice, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(build_export, "delay", down)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post("/accounts/privacy/export/")

    assert response.status_code == 302
    assert DataExport.objects.get(user=alice).status == "pending"
    assert "could not queue accounts.tasks.build_export" in caplog.text


def test_cleanup_does_not_queue_an_inactive_users_export(bob):
    pending = DataExport.objects.create(user=bob)
    DataExport.objects.filter(pk=pending.pk).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    type(bob).objects.filter(pk=bob.pk).update(is_active=False)

    assert exports_cleanup()["requeued"] == 0
    assert DataExport.objects.get(pk=pending.pk).status == "pending"
