"""What the data export holds: its format, the order of its sections, and where each model holding
user data appears in export.json.

Each app exports its own data, as an area of the privacy registry (memoryweb.privacy;
`export_user_data` in accounts/privacy.py, chat/privacy.py, memories/privacy.py, vault/privacy.py).
`EXPORTED_MODELS` says where each model holding user data appears in the JSON: the tests walk the
models, so a new model with user data fails until it is exported and listed here."""

from __future__ import annotations

FORMAT = "memoryweb-export"
FORMAT_VERSION = 1

# The labels of the privacy registry's areas, in the order their sections are exported: each returns
# a dict of top-level keys of the export. Every registered area must be listed.
SECTION_ORDER: tuple[str, ...] = ("account", "chat", "memories", "imports", "encryption")

# Every model holding a user's data (owned through a chain of foreign keys from the user), and where
# its rows are in export.json: a dotted path, `[]` stepping into each item of a list.
EXPORTED_MODELS: dict[str, str] = {
    "accounts.User": "account",
    "accounts.User_groups": "account.groups",
    "accounts.User_user_permissions": "account.permissions",
    "accounts.MemorySettings": "memory_settings",
    "accounts.ConsentRecord": "consents",
    "accounts.ApiKey": "api_keys",
    "accounts.AccessEvent": "access_events",
    "accounts.AppGrant": "app_grants",
    "oauth2_provider.Application": "oauth.clients",
    "accounts.RegisteredApp": "oauth.clients[].app",
    "oauth2_provider.AccessToken": "oauth.tokens",
    "oauth2_provider.RefreshToken": "oauth.refresh_tokens",
    "oauth2_provider.Grant": "oauth.codes",
    "oauth2_provider.IDToken": "oauth.id_tokens",
    "oauth2_provider.DeviceGrant": "oauth.device_grants",
    "accounts.DataExport": "exports",
    "admin.LogEntry": "admin_actions",
    "accounts.ErasureReceipt": "erasure_receipts",
    "chat.Conversation": "conversations",
    "chat.Message": "conversations[].messages",
    "chat.Recall": "conversations[].messages[].recalls",
    "memories.Memory": "memories",
    "memories.Memory_source_messages": "memories[].source_message_ids",
    "memories.MemoryRevision": "memories[].revisions",
    "memories.Episode": "episodes",
    "memories.Episode_messages": "episodes[].message_ids",
    "memories.TurnTerm": "turn_term_counts",
    "imports.ImportJob": "imports",
    "imports.ImportItem": "imports[].items",
    "vault.UserKey": "data_key",
}

# Columns of those models that are not in export.json, and why. Every other column is (tests check
# it). Columns pointing at the user are implicit everywhere: the whole file is about one user.
OMITTED_FIELDS: dict[str, dict[str, str]] = {
    "accounts.User": {"password": "a salted hash, useless outside this server"},
    "accounts.ApiKey": {"hashed_key": "a hash of the key, useless outside this server"},
    "accounts.DataExport": {
        "token": "the secret of a download link",
        "file_name": "a path on the server",
    },
    "vault.UserKey": {
        "wrapped_key": "the key of your text on this server, itself encrypted: useless outside it"
    },
    "oauth2_provider.Application": {
        "client_secret": "a hash of the client's secret, useless outside this server",
        "hash_client_secret": "how that secret is stored",
    },
    "accounts.RegisteredApp": {
        "hashed_secret": "a hash of the app's secret, useless outside this server",
        "oauth_application": "nested under its client",
    },
    "oauth2_provider.AccessToken": {"token": "a credential", "token_checksum": "its hash"},
    "oauth2_provider.RefreshToken": {"token": "a credential", "token_checksum": "its hash"},
    "oauth2_provider.Grant": {"code": "a credential", "code_challenge": "a hash of its proof"},
    "oauth2_provider.DeviceGrant": {"device_code": "a credential", "user_code": "a credential"},
    "admin.LogEntry": {"object_repr": "the changed object's text, possibly another user's data"},
    "chat.Message": {
        "conversation": "nested under its conversation",
        "queued_at": "when the worker was last asked to process it: its job state, not data about you",
    },
    "chat.Conversation": {
        "finalize_queued_at": "when the worker was last asked to finish it: its job state"
    },
    "chat.Recall": {"message": "nested under its message"},
    "imports.ImportJob": {"file_name": "a path on the server (the upload, deleted once read)"},
    "imports.ImportItem": {
        "id": "its place in the file says which it is",
        "job": "nested under its import",
    },
    "memories.Memory": {
        "fingerprint": "derived: normalised text for de-duplication",
        "embedding": "derived: a vector computed from the text",
        "search": "derived: a full-text index of the text",
    },
    "memories.MemoryRevision": {"memory": "nested under its memory"},
    "memories.Episode": {
        "embedding": "derived: a vector computed from the text",
        "search": "derived: a full-text index",
        "lexical": "derived: the text's words weighted for search, by hashed term",
    },
}
