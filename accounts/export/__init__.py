"""The privacy export: everything kept about a user, as export.json (machine-readable, described by
accounts/export_schema.json) and export.md (human-readable) in one zip under DATA_DIR/exports.

- `manifest`: the format, its section order, and where each model holding user data appears in it;
- `document`: the JSON document, assembled from the privacy registry's areas, and the Markdown file;
- `jobs`: requesting, building (by accounts.tasks.build_export), downloading, expiring, cleaning up."""
