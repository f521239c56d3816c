"""Apps no longer steer the assistant: memories apps pushed before are filed under subjects of their
own (so they can't supersede what the user said), unpinned, and their instructions held for
review."""

from django.db import migrations

APP_SUBJECT_PREFIX = "app:"  # memories.services.APP_SUBJECT_PREFIX, as of this migration


def set_app_memories_apart(apps, schema_editor):
    Memory = apps.get_model("memories", "Memory")
    pushed = Memory.objects.filter(source="api", attributes__has_key="app").only(
        "pk", "subject", "pinned", "kind", "review_status", "flag_reasons", "attributes"
    )
    for memory in pushed.iterator():
        prefix = f"{APP_SUBJECT_PREFIX}{memory.attributes['app']}:"
        if not memory.subject.startswith(prefix):
            memory.subject = f"{prefix}{memory.subject}"[:200]
        memory.pinned = False
        if memory.kind == "instruction" and memory.review_status == "approved":
            memory.review_status = "pending"
            memory.flag_reasons = [*memory.flag_reasons, "app-instruction"]
        memory.save(update_fields=["subject", "pinned", "review_status", "flag_reasons"])


class Migration(migrations.Migration):
    dependencies = [("memories", "0013_bound_tokens")]

    operations = [migrations.RunPython(set_app_memories_apart, migrations.RunPython.noop)]
