from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(template_name="accounts/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("privacy/settings/", views.memory_settings, name="memory_settings"),
    path("privacy/consent/", views.consent, name="consent"),
    path("privacy/consent/change/", views.consent_change, name="consent_change"),
    path("privacy/forget/", views.forget_everything_view, name="forget_everything"),
    path("privacy/access-log/", views.access_log, name="access_log"),
    path("privacy/receipts/", views.erasure_receipts, name="receipts"),
    path(
        "privacy/receipts/<uuid:receipt_id>/download/",
        views.erasure_receipt_download,
        name="receipt_download",
    ),
    path("deleted/", views.account_deleted, name="account_deleted"),
    path("deleted/receipt/", views.account_deleted_receipt, name="account_deleted_receipt"),
    path("privacy/apps/", views.apps, name="apps"),
    path("privacy/apps/grant/", views.app_grant_view, name="app_grant"),
    path("privacy/apps/<int:grant_id>/revoke/", views.app_revoke_view, name="app_revoke"),
    path("privacy/keys/", views.api_keys, name="api_keys"),
    path("privacy/keys/<int:key_id>/revoke/", views.api_key_revoke_view, name="api_key_revoke"),
    path("privacy/export/", views.data_export, name="export"),
    path("privacy/export/<slug:token>/download/", views.export_download, name="export_download"),
]
