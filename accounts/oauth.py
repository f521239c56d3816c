"""OAuth 2.1 for MCP clients, on django-oauth-toolkit (DOT), tied to the one model of which client
may do what (accounts.connected_apps).

DOT is the authorization server: the authorization code grant with PKCE S256 (nothing else), token
and revocation endpoints, RFC 8414 server metadata, RFC 9728 protected-resource metadata, RFC 7591
dynamic registration, RFC 8707 resource indicators; tokens stored as SHA-256 only. What this module
adds on top:

- every OAuth client is a `RegisteredApp` (`oauth_application`), so a token acts under that app's
  `AppGrant` from the user, with its scopes (`APP_SCOPES`), exactly as the REST API's apps do;
- the consent page names the client (its name is its own claim), its redirect host and what it asks,
  in the words of `Scope` labels; the user may grant less; the consent is the user's `AppGrant`;
- registration is open, as MCP clients expect, but limited: per address and hour, in size, and to
  https redirect URIs (http only to a loopback address, for native apps);
- a token works only while the grant is in force (`oauth_access`); revoking the grant also revokes
  the client's tokens (`oauth_tokens_revoke`).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.db import transaction
from django.http import HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider import views as oauth_views
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.forms import AllowForm
from oauth2_provider.models import get_access_token_model, get_application_model
from oauth2_provider.oauth2_validators import validate_resource_as_url_prefix
from oauth2_provider.scopes import BaseScopes
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors

from accounts.connected_apps import AppAccess, app_grant, app_secret_set
from accounts.lockout import count_attempt
from accounts.models import AppGrant, RegisteredApp
from accounts.scopes import APP_SCOPES, Scope
from memoryweb.middleware import CONTENT_SECURITY_POLICY

ACCESS_TOKEN_PREFIX = "mwoat_"
REFRESH_TOKEN_PREFIX = "mwort_"
REGISTRATION_MAX_BYTES = 8_000
CLIENT_NAME_MAX_CHARS = 80
REDIRECT_URIS_MAX = 5
REDIRECT_URI_MAX_CHARS = 500
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
REGISTRABLE_GRANT_TYPES = {"authorization_code", "refresh_token"}
CSP_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(:\d+)?|http://\[::1\](:\d+)?")


def access_token_generate(request) -> str:
    """A new access token, with a prefix the API's authentication knows it by (as `mwapp_`)."""
    return ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)


def refresh_token_generate(request) -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


class AppScopes(BaseScopes):
    """DOT's scopes are the apps' scopes, with the labels users see everywhere else."""

    def get_all_scopes(self) -> dict[str, str]:
        return {scope: Scope(scope).label for scope in APP_SCOPES}

    def get_available_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        return list(APP_SCOPES)

    def get_default_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        return list(APP_SCOPES)


# --- registration (RFC 7591) ----------------------------------------------------------------------


def redirect_uri_refusal(uri) -> str | None:
    """Why a client may not register `uri` as a redirect URI (None: it may): https anywhere, http
    only to a loopback address (RFC 8252's native apps, e.g. Claude Desktop's local listener)."""
    if not isinstance(uri, str) or not uri or len(uri) > REDIRECT_URI_MAX_CHARS:
        return f"each redirect URI is a string of at most {REDIRECT_URI_MAX_CHARS} characters"
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        return f"{uri!r} is not a URL"
    if parts.fragment or parts.username or parts.password or not host:
        return f"{uri!r} must be an absolute URL with a host, no user name and no fragment"
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return None
    return f"{uri!r} must use https (http only to localhost, 127.0.0.1 or [::1])"


def _registration_error(description: str, *, error: str = "invalid_client_metadata", status=400):
    return JsonResponse({"error": error, "error_description": description}, status=status)


def _registration_refusal(data) -> JsonResponse | None:
    """What DOT's registration does not check and an open registration must: names, sizes, the
    redirect URIs' policy, the grant types and scopes we serve."""
    if not isinstance(data, dict):
        return _registration_error("The body must be a JSON object.")
    name = data.get("client_name", "")
    if not isinstance(name, str) or len(name.strip()) > CLIENT_NAME_MAX_CHARS or "\x00" in name:
        return _registration_error(
            f"client_name is a string of at most {CLIENT_NAME_MAX_CHARS} characters."
        )
    uris = data.get("redirect_uris")
    if not isinstance(uris, list) or not 1 <= len(uris) <= REDIRECT_URIS_MAX:
        return _registration_error(
            f"redirect_uris lists 1 to {REDIRECT_URIS_MAX} URIs.", error="invalid_redirect_uri"
        )
    for uri in uris:
        if refusal := redirect_uri_refusal(uri):
            return _registration_error(refusal, error="invalid_redirect_uri")
    grant_types = data.get("grant_types", ["authorization_code"])
    if not isinstance(grant_types, list) or not set(grant_types) <= REGISTRABLE_GRANT_TYPES:
        return _registration_error("grant_types: only authorization_code and refresh_token.")
    if data.get("response_types", ["code"]) != ["code"]:
        return _registration_error("response_types: only code.")
    scope = data.get("scope", "")
    if not isinstance(scope, str) or not set(scope.split()) <= set(APP_SCOPES):
        return _registration_error(f"scope: at most {' '.join(APP_SCOPES)}.")
    return None


@csrf_exempt
def client_register(request):
    """RFC 7591 registration, open to anyone as MCP clients expect: limited per address and hour, in
    size and by `_registration_refusal`; then DOT's own view registers the client, and the client is
    made a (self-registered) `RegisteredApp` in the same transaction."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    address = request.META.get("REMOTE_ADDR", "")
    if count_attempt("oauth-registrations:" + address, 3600) > (
        settings.OAUTH_REGISTRATION_LIMIT_PER_HOUR
    ):
        response = _registration_error(
            "Too many clients registered from this address; try again later.",
            error="temporarily_unavailable",
            status=429,
        )
        response["Retry-After"] = "3600"
        return response
    if len(request.body) > REGISTRATION_MAX_BYTES:
        return _registration_error(f"The body is over {REGISTRATION_MAX_BYTES} bytes.", status=413)
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return _registration_error("The body must be JSON.")
    if refusal := _registration_refusal(data):
        return refusal
    with transaction.atomic():
        response = oauth_views.DynamicClientRegistrationView.as_view()(request)
        if response.status_code == 201:
            client_id = json.loads(response.content)["client_id"]
            oauth_app_register(application=get_application_model().objects.get(client_id=client_id))
    return response


def oauth_app_register(*, application) -> RegisteredApp:
    """The `RegisteredApp` a self-registered OAuth client is, named after its own claim with the
    start of its client id (names are unique, and a client must not pass for an operator's app).
    Its app secret is made and thrown away: it acts only through OAuth tokens."""
    claimed = " ".join(application.name.split()) or "Unnamed app"
    app = RegisteredApp(
        name=f"{claimed} ({application.client_id[:8]})",
        description="Registered itself as an OAuth client (MCP); its name is its own claim.",
        oauth_application=application,
        self_registered=True,
    )
    app_secret_set(app=app)
    return app


@csrf_exempt
def client_registration_manage(request, client_id: str):
    """RFC 7592 for a registered client, without PUT: a client may read or delete its registration,
    but not change its redirect URIs past `_registration_refusal`."""
    if request.method not in ("GET", "DELETE"):
        return HttpResponseNotAllowed(["GET", "DELETE"])
    return oauth_views.DynamicClientRegistrationManagementView.as_view()(
        request, client_id=client_id
    )


# --- metadata -------------------------------------------------------------------------------------


class ProtectedResourceMetadata(oauth_views.OAuthProtectedResourceMetadataView):
    """RFC 9728, at the root and at /mcp's path form: the protected resource is the whole site (its
    origin), so one token serves /mcp and the REST API alike, with the same scopes."""

    def get_resource(self, request) -> str:
        return site_resource(request)


def site_resource(request) -> str:
    """The resource indicator (RFC 8707) tokens are issued for: this site's origin."""
    return request.build_absolute_uri("/")


def resource_metadata_url(request) -> str:
    """Where an MCP client finds the resource's metadata (RFC 9728's path form for /mcp)."""
    return request.build_absolute_uri("/.well-known/oauth-protected-resource/mcp")


# --- consent --------------------------------------------------------------------------------------


class ConsentForm(AllowForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, Scope(scope).label) for scope in APP_SCOPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )


class ConsentView(oauth_views.AuthorizationView):
    """The authorization endpoint's page: the client's name (its own claim), where it sends you
    back, and what it asks, each a box the user may untick. Allowing is the user's `AppGrant` to the
    client's app (and a consent record); the code, and so the token, holds only what was ticked."""

    template_name = "accounts/oauth_consent.html"
    form_class = ConsentForm

    def validate_authorization_request(self, request):
        """DOT's checks, and PKCE with S256 before the page is shown (DOT refuses "plain" only
        when it makes the code, after the user said yes)."""
        scopes, credentials = super().validate_authorization_request(request)
        if credentials.get("code_challenge_method") != "S256":
            error = oauth2_errors.InvalidRequestError(
                description='PKCE with code_challenge_method "S256" is required.',
                state=credentials.get("state"),
            )
            raise OAuthToolkitError(error=error, redirect_uri=credentials["redirect_uri"])
        return scopes, credentials

    def get_context_data(self, **kwargs):
        """What the page shows, read off the form's fields: the same on the first GET and on a
        POST sent back for a correction."""
        context = super().get_context_data(**kwargs)
        form = context.get("form")
        if form is None:  # an error page (DOT's error_response): nothing to consent to
            return context
        asked = set((form["scope"].value() or "").split())
        chosen = form["scopes"].value() if form.is_bound else asked
        context["app"] = _app_of_client(form["client_id"].value())
        context["redirect_host"] = urlsplit(form["redirect_uri"].value() or "").netloc
        context["asked"] = [
            (scope, Scope(scope).label, scope in chosen) for scope in APP_SCOPES if scope in asked
        ]
        return context

    def render_to_response(self, context, **kwargs):
        """The page's form posts here, and its answer redirects to the client: the strict CSP's
        form-action lets the browser follow to that one origin (Chromium checks redirects too)."""
        response = super().render_to_response(context, **kwargs)
        form = context.get("form")
        if form is not None and (origin := _csp_origin(form["redirect_uri"].value())):
            response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
                "form-action 'self'", f"form-action 'self' {origin}"
            )
        return response

    def form_valid(self, form):
        if not form.cleaned_data.get("allow"):
            return super().form_valid(form)
        app = _app_of_client(form.cleaned_data["client_id"])
        asked = set(form.cleaned_data["scope"].split())
        chosen = [s for s in APP_SCOPES if s in asked and s in form.cleaned_data["scopes"]]
        if app is None or form.cleaned_data.get("code_challenge_method") != "S256":
            form.add_error(None, "This app is not available, or its request is not valid.")
            return self.form_invalid(form)
        if not chosen:
            form.add_error(None, "Tick at least one thing it may do, or deny.")
            return self.form_invalid(form)
        form.cleaned_data["scope"] = " ".join(chosen)
        with transaction.atomic():
            app_grant(
                user=self.request.user,
                app=app,
                scopes=chosen,
                method="OAuth consent page: " + ", ".join(chosen),
            )
            return super().form_valid(form)


def _csp_origin(uri) -> str | None:
    """`uri`'s origin as a CSP source, or None when it is not a plain one."""
    try:
        parts = urlsplit(uri or "")
    except ValueError:
        return None
    origin = f"{parts.scheme}://{parts.netloc}"
    return origin if CSP_ORIGIN.fullmatch(origin) else None


def _app_of_client(client_id) -> RegisteredApp | None:
    """The active app an OAuth client id is (None: unknown, unlinked or disabled)."""
    if not client_id:
        return None
    return RegisteredApp.objects.active().filter(oauth_application__client_id=client_id).first()


# --- tokens ---------------------------------------------------------------------------------------


def oauth_access(*, token: str, url: str) -> tuple[object, AppAccess] | None:
    """The user and app access an OAuth access token carries at `url` (None when it is unknown,
    expired, issued for another resource, of a disabled app, an inactive user, or under no grant in
    force): the grant's scopes, narrowed to the token's."""
    checksum = hashlib.sha256(token.encode()).hexdigest()
    access_token = (
        get_access_token_model()
        .objects.select_related("user", "application")
        .filter(token_checksum=checksum)
        .first()
    )
    if access_token is None or access_token.is_expired() or access_token.user is None:
        return None
    user = access_token.user
    if not user.is_active or not access_token.application_id:
        return None
    if not validate_resource_as_url_prefix(url, access_token.resource):
        return None
    grant = (
        AppGrant.objects.for_user(user)
        .active()
        .filter(app__oauth_application=access_token.application_id, app__disabled_at__isnull=True)
        .select_related("app")
        .first()
    )
    if grant is None:
        return None
    return user, AppAccess(
        app=grant.app, grant=grant, token_scopes=frozenset(access_token.scope.split())
    )
