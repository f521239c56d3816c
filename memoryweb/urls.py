from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from accounts.views import receipt_keys
from memories.mcp_server import mcp_endpoint
from memoryweb.api_docs import DocsView
from memoryweb.health import Readiness, alive

handler400 = "memoryweb.api.handler400"
handler403 = "memoryweb.api.handler403"
handler404 = "memoryweb.api.handler404"
handler500 = "memoryweb.api.handler500"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="chat:index", permanent=False)),
    path("healthz", alive, name="healthz"),
    path("readyz", Readiness.as_view(), name="readyz"),
    # The public keys that verify erasure receipts, for anyone (docs/privacy.md#erasure-receipts).
    path(".well-known/memoryweb-receipt-keys", receipt_keys, name="receipt-keys"),
    path("admin/", admin.site.urls),
    path("accounts/privacy/import/", include("imports.urls")),
    path("accounts/", include("accounts.urls")),
    path("chat/", include("chat.urls")),
    path("memories/", include("memories.urls")),
    path("api/v1/", include("memoryweb.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", DocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("mcp", mcp_endpoint, name="mcp"),
    path("", include("accounts.oauth_urls")),  # /oauth/… and /.well-known/… (at the origin)
]
