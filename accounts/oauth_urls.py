"""OAuth 2.1 (accounts.oauth), included at the site's root: the well-known metadata must sit at the
origin (RFC 8414, RFC 9728). The namespace is DOT's, whose views reverse these names."""

from django.urls import path
from oauth2_provider import views as oauth_views

from accounts import oauth

app_name = "oauth2_provider"

urlpatterns = [
    path(
        ".well-known/oauth-authorization-server",
        oauth_views.OAuthServerMetadataView.as_view(),
        name="oauth-server-metadata",
    ),
    path(
        ".well-known/oauth-protected-resource",
        oauth.ProtectedResourceMetadata.as_view(),
        name="oauth-resource-metadata",
    ),
    path(
        ".well-known/oauth-protected-resource/mcp",
        oauth.ProtectedResourceMetadata.as_view(),
        name="oauth-resource-metadata-mcp",
    ),
    path("oauth/authorize/", oauth.ConsentView.as_view(), name="authorize"),
    path("oauth/token/", oauth_views.TokenView.as_view(), name="token"),
    path("oauth/revoke/", oauth_views.RevokeTokenView.as_view(), name="revoke-token"),
    path("oauth/register/", oauth.client_register, name="dcr-register"),
    path(
        "oauth/register/<str:client_id>/",
        oauth.client_registration_manage,
        name="dcr-register-management",
    ),
]
