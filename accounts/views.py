import json
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.connected_apps import app_grant, app_revoke, apps_with_grants, grant_of_user
from accounts.export.jobs import ExportExpired, ExportNotFound, export_archive, export_request
from accounts.forms import (
    ApiKeyCreateForm,
    AppGrantForm,
    ConsentForm,
    ForgetEverythingForm,
    MemorySettingsForm,
    SignupForm,
    TimeZoneForm,
    consent_purposes,
)
from accounts.lockout import signup_attempt_allowed
from accounts.models import AccessEvent, AppGrant, ConsentRecord, DataExport, RegisteredApp
from accounts.privacy import FORGET_PHRASE, forget_everything
from accounts.receipts import erased_summary, receipt_public_keys, receipt_response
from accounts.selectors import (
    api_key_of_user,
    api_keys_list,
    consents_in_force,
    export_of_user,
    exports_list,
    memory_settings_get,
    receipt_of_user,
    receipts_list,
)
from accounts.services import (
    api_key_create,
    api_key_revoke,
    consent_set,
    memory_settings_update,
    time_zone_set,
)

# What the consent record says the sign-up box included.
SIGNUP_CONSENT_METHOD = "signup form: memories and past chats"


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("chat:index")
    if request.method == "POST" and not signup_attempt_allowed(request):
        message = "Too many sign-ups from this address; please try again in an hour."
        return render(request, "accounts/locked_out.html", {"message": message}, status=429)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        if form.cleaned_data["remember"]:  # both switches, as the box says
            consent_set(
                user=user,
                purpose=ConsentRecord.Purpose.MEMORY,
                granted=True,
                method=SIGNUP_CONSENT_METHOD,
            )
            memory_settings_update(user=user, use_past_chats=True)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("chat:index")
    return render(request, "accounts/signup.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def memory_settings(request):
    """Memory on/off, use of past chats, how long temporary chats are kept; the user's time zone."""
    form = MemorySettingsForm(request.POST or None, instance=memory_settings_get(user=request.user))
    zone_form = TimeZoneForm(request.POST or None, user=request.user, prefix="account")
    if request.method == "POST" and form.is_valid() and zone_form.is_valid():
        memory_settings_update(user=request.user, **form.cleaned_data)
        time_zone_set(user=request.user, time_zone=zone_form.cleaned_data["time_zone"])
        messages.success(request, "Memory settings saved. They apply from your next message.")
        return redirect("accounts:memory_settings")
    return render(request, "accounts/memory_settings.html", {"form": form, "zone_form": zone_form})


@login_required
def consent(request):
    """Each purpose with the consent in force (when, how, which policy version) and its history."""
    in_force = consents_in_force(user=request.user)
    purposes = [
        (purpose, label, in_force.get(purpose)) for purpose, label in consent_purposes().items()
    ]
    history = ConsentRecord.objects.for_user(request.user)[:100]
    return render(request, "accounts/consent.html", {"purposes": purposes, "history": history})


@login_required
@require_POST
def consent_change(request):
    """Grant or withdraw one purpose: one click, in force at once."""
    form = ConsentForm(request.POST)
    if form.is_valid():
        consent_set(
            user=request.user,
            purpose=form.cleaned_data["purpose"],
            granted=form.cleaned_data["granted"],
            method="consent page",
        )
        messages.success(request, "Saved. It applies from now on.")
    else:
        messages.error(request, "That consent could not be changed.")
    return redirect("accounts:consent")


@login_required
@require_http_methods(["GET", "POST"])
def forget_everything_view(request):
    """Erase all memory and chat data (optionally the account): password and typed phrase
    required."""
    form = ForgetEverythingForm(request.POST or None, request=request, phrase=FORGET_PHRASE)
    if request.method == "POST" and form.is_valid():
        delete_account = form.cleaned_data["delete_account"]
        receipt = forget_everything(user=request.user, delete_account=delete_account)
        if delete_account:
            logout(request)
            # The receipt is kept nowhere else: this browser gets it, for its session's life.
            request.session[DELETED_ACCOUNT_RECEIPT] = receipt.document
            return redirect("accounts:account_deleted")
        messages.success(
            request,
            "Done: every conversation and everything remembered is erased. "
            "Its signed receipt is on the Erasure receipts page.",
        )
        return redirect("memories:remembered")
    return render(request, "accounts/forget_everything.html", {"form": form})


DELETED_ACCOUNT_RECEIPT = "deleted_account_receipt"  # the session key of the account's last receipt


@never_cache
@require_GET
def account_deleted(request):
    """After the account was deleted: its erasure receipt, to download now (it is stored nowhere)."""
    document, receipt = _deleted_account_receipt(request)
    if document is None:
        return redirect("accounts:login")
    context = {"receipt": receipt, "erased": erased_summary(receipt)}
    return render(request, "accounts/account_deleted.html", context)


@never_cache
@require_GET
def account_deleted_receipt(request):
    document, receipt = _deleted_account_receipt(request)
    if document is None:
        raise Http404("No receipt in this session.")
    erased_at = datetime.fromisoformat(receipt["erased_at"])
    return receipt_response(receipt_id=receipt["id"], erased_at=erased_at, document=document)


def _deleted_account_receipt(request) -> tuple[str | None, dict]:
    """The deleted account's receipt this session holds: the document and its signed part."""
    document = request.session.get(DELETED_ACCOUNT_RECEIPT)
    return document, json.loads(document)["receipt"] if document else {}


@require_GET
def receipt_keys(request):
    """The public keys that verify this server's erasure receipts, the current one first: public,
    so that anyone holding a receipt can check it."""
    return JsonResponse({"keys": receipt_public_keys()})


@login_required
def erasure_receipts(request):
    """My erasure receipts: what each erasure took (counts, never content), when, signed."""
    rows = [
        (receipt, receipt.receipt, erased_summary(receipt.receipt))
        for receipt in receipts_list(user=request.user)[:200]
    ]
    return render(request, "accounts/receipts.html", {"rows": rows})


@login_required
@never_cache
@require_GET
def erasure_receipt_download(request, receipt_id):
    receipt = receipt_of_user(user=request.user, receipt_id=receipt_id)
    return receipt_response(
        receipt_id=receipt.pk, erased_at=receipt.created_at, document=receipt.document
    )


@login_required
def access_log(request):
    """Who used or read my memories, and when: the assistant (in which conversation), API keys,
    admins."""
    events = AccessEvent.objects.for_user(request.user).select_related(
        "conversation", "api_key", "app"
    )[:500]
    return render(request, "accounts/access_log.html", {"events": events})


EXPORT_REFRESH_SECONDS = 3


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def data_export(request):
    """Prepare an export of everything kept about me (built by a task), follow its progress,
    download it. While one is being prepared the page reloads itself (a Refresh header: no script
    under the CSP)."""
    if request.method == "POST":
        _, created = export_request(user=request.user)
        if created:
            messages.success(request, "Your export is being prepared. This page updates by itself.")
        else:
            messages.info(request, "An export is already being prepared.")
        return redirect("accounts:export")
    exports = exports_list(user=request.user)
    working = any(
        x.status in (DataExport.Status.PENDING, DataExport.Status.RUNNING) for x in exports
    )
    response = render(
        request,
        "accounts/export.html",
        {"exports": exports, "working": working, "link_hours": settings.EXPORT_LINK_HOURS},
    )
    if working:
        response["Refresh"] = str(EXPORT_REFRESH_SECONDS)
    return response


@login_required
@never_cache
@require_GET
def export_download(request, token: str):
    """The export's zip, as an attachment, for its owner only (anyone else: 404) while its link
    lasts; after that the file is deleted and the link answers 410 Gone."""
    export = export_of_user(user=request.user, token=token)
    try:
        path, filename = export_archive(export=export)
    except ExportExpired:
        return render(
            request,
            "accounts/export_expired.html",
            {"link_hours": settings.EXPORT_LINK_HOURS},
            status=410,
        )
    except ExportNotFound:
        raise Http404("This export is not ready.") from None
    return FileResponse(
        path.open("rb"), as_attachment=True, filename=filename, content_type="application/zip"
    )


@login_required
def apps(request):
    """Registered apps that may use my memory over the API once I grant it: each with my grant in
    force (its scopes, since when), a form to grant it and a button to revoke it; my earlier grants
    below."""
    rows = [
        (app, grant, AppGrantForm(initial={"app": app.pk}))
        for app, grant in apps_with_grants(user=request.user)
    ]
    history = AppGrant.objects.for_user(request.user).select_related("app")[:100]
    return render(request, "accounts/apps.html", {"rows": rows, "history": history})


@login_required
@require_POST
def app_grant_view(request):
    form = AppGrantForm(request.POST)
    app = (
        # an OAuth client that registered itself is granted only on its consent page
        RegisteredApp.objects.active()
        .filter(pk=form.cleaned_data["app"], self_registered=False)
        .first()
        if form.is_valid()
        else None
    )
    if app is None:
        messages.error(request, "Choose what the app may do.")
    else:
        app_grant(user=request.user, app=app, scopes=form.cleaned_data["scopes"])
        messages.success(request, f"{app.name} now has access. You can revoke it here at any time.")
    return redirect("accounts:apps")


@login_required
@require_POST
def app_revoke_view(request, grant_id: int):
    grant = grant_of_user(user=request.user, grant_id=grant_id)
    app_revoke(user=request.user, grant=grant)
    messages.success(request, f"{grant.app.name} no longer has access to your memory.")
    return redirect("accounts:apps")


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def api_keys(request):
    """My personal API keys (what each may do, when it was last used, when it expires) and a form
    for a new one, with my password again; a new key is in this one response and never again."""
    form = ApiKeyCreateForm(request.POST or None, request=request)
    new_key = None
    if request.method == "POST" and form.is_valid():
        api_key, new_key = api_key_create(
            user=request.user,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_in_days=form.cleaned_data["expires_in_days"],
        )
        form = ApiKeyCreateForm(request=request)
    context = {"form": form, "keys": api_keys_list(user=request.user), "new_key": new_key}
    return render(request, "accounts/api_keys.html", context)


@login_required
@require_POST
def api_key_revoke_view(request, key_id: int):
    api_key = api_key_of_user(user=request.user, key_id=key_id)
    if api_key_revoke(api_key=api_key):
        messages.success(request, f"The key {api_key.name} ({api_key.prefix}…) no longer works.")
    else:
        messages.info(request, "That key was already revoked.")
    return redirect("accounts:api_keys")
