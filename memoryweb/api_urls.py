"""The REST API, version 1 (/api/v1/). The schema is at /api/schema/, the interactive docs at
/api/docs/."""

from django.urls import path, re_path

from accounts.api import (
    AccessLogApi,
    ApiKeyListApi,
    ApiKeyRevokeApi,
    ConsentApi,
    ExportDetailApi,
    ExportDownloadApi,
    ExportListApi,
    ForgetApi,
    ReceiptDetailApi,
    ReceiptListApi,
    SettingsApi,
)
from chat.api import (
    ChatApi,
    ConversationDetailApi,
    ConversationEndApi,
    ConversationListApi,
    ConversationMessagesApi,
    MessageDetailApi,
)
from imports.api import (
    ImportCancelApi,
    ImportConversationsApi,
    ImportDetailApi,
    ImportListApi,
    ImportStartApi,
)
from memories.api import (
    ContextApi,
    MemoryDetailApi,
    MemoryHistoryApi,
    MemoryListApi,
    MemoryReportApi,
    MemorySearchApi,
    ProfileApi,
    PushApi,
)
from memoryweb.api import not_found

app_name = "api"

urlpatterns = [
    path("chat", ChatApi.as_view(), name="chat"),
    path("conversations", ConversationListApi.as_view(), name="conversations"),
    path(
        "conversations/<int:conversation_id>", ConversationDetailApi.as_view(), name="conversation"
    ),
    path(
        "conversations/<int:conversation_id>/messages",
        ConversationMessagesApi.as_view(),
        name="messages",
    ),
    path(
        "conversations/<int:conversation_id>/end",
        ConversationEndApi.as_view(),
        name="conversation-end",
    ),
    path("messages/<int:message_id>", MessageDetailApi.as_view(), name="message"),
    path("memories", MemoryListApi.as_view(), name="memories"),
    path("memories/search", MemorySearchApi.as_view(), name="memory-search"),
    path("memories/<int:memory_id>", MemoryDetailApi.as_view(), name="memory"),
    path("memories/<int:memory_id>/history", MemoryHistoryApi.as_view(), name="memory-history"),
    path("memories/<int:memory_id>/report", MemoryReportApi.as_view(), name="memory-report"),
    path("context", ContextApi.as_view(), name="context"),
    path("context/profile", ProfileApi.as_view(), name="profile"),
    path("context/push", PushApi.as_view(), name="push"),
    path("me/settings", SettingsApi.as_view(), name="settings"),
    path("me/consents", ConsentApi.as_view(), name="consents"),
    path("me/exports", ExportListApi.as_view(), name="exports"),
    path("me/exports/<int:export_id>", ExportDetailApi.as_view(), name="export"),
    path(
        "me/exports/<int:export_id>/download", ExportDownloadApi.as_view(), name="export-download"
    ),
    path("me/imports", ImportListApi.as_view(), name="imports"),
    path("me/imports/<int:import_id>", ImportDetailApi.as_view(), name="import"),
    path(
        "me/imports/<int:import_id>/conversations",
        ImportConversationsApi.as_view(),
        name="import-conversations",
    ),
    path("me/imports/<int:import_id>/start", ImportStartApi.as_view(), name="import-start"),
    path("me/imports/<int:import_id>/cancel", ImportCancelApi.as_view(), name="import-cancel"),
    path("me/access-log", AccessLogApi.as_view(), name="access-log"),
    path("me/forget", ForgetApi.as_view(), name="forget"),
    path("me/receipts", ReceiptListApi.as_view(), name="receipts"),
    path("me/receipts/<uuid:receipt_id>", ReceiptDetailApi.as_view(), name="receipt"),
    path("me/keys", ApiKeyListApi.as_view(), name="api-keys"),
    path("me/keys/<int:key_id>/revoke", ApiKeyRevokeApi.as_view(), name="api-key-revoke"),
    # anything else here (e.g. /memories/abc): 404 in the error shape, not HTML
    re_path(r"", not_found),
]
