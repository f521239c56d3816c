"""The API's schema and interactive docs pages (/api/schema/, /api/docs/)."""

from drf_spectacular.views import SpectacularSwaggerSplitView


class DocsView(SpectacularSwaggerSplitView):
    """Swagger UI from the sidecar's static files (no CDN: works offline), its script a separate
    file and no inline style, so the strict Content-Security-Policy holds here too."""

    template_name = "api/swagger_ui.html"
