"""Peak memory of an import: reading a ~200 MB ChatGPT export as a stream, and the import job on it,
against json.load of the same file, in one run.

    MEMORYWEB_DATA_DIR=$PWD/.data/bench .venv/bin/python bench/import_memory.py \\
        [--size-mb 200] [--choose 20] [--zip] [--json OUT]

It writes the export with the tests' generator (tests/imports/exports.py: ChatGPT's mapping trees
with dead branches, hidden and tool nodes; 20 turns a conversation), then runs each measure in a
process of its own, so that each peak is its own: `ru_maxrss` (the peak resident set) and the
resident set before the measured work (`psutil`), both in MiB.

- `json.load`: the whole file parsed at once (what the import must not do).
- `stream`: `imports.formats.conversations` over the file: every conversation read, one at a time.
- `job`: the real job on the database the settings give: `import_upload` of the file (stored,
  hashed, recognised), the listing pass (an item per conversation), then `--choose` conversations
  imported and learned from (the second pass streams the whole file again). The process has loaded
  the embedding model before: its peak counts it; the job's own share is peak minus before.

Offline (rules extraction, local embeddings). The bench user is deleted at the end. Numbers:
bench/README.md and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryweb.settings")
USERNAME = "bench-import-memory"
MIB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--choose", type=int, default=20, help="conversations the job imports")
    parser.add_argument("--zip", action="store_true", help="also measure the export zipped")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(MEASURES[args.measure](args)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
        results = run(args, Path(folder))
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def run(args, folder: Path) -> dict:
    from tests.imports.exports import write_chatgpt_export

    path = folder / "conversations.json"
    started = time.perf_counter()
    count = write_chatgpt_export(path, size=args.size_mb * MIB)
    results = {
        "file_mib": round(path.stat().st_size / MIB, 1),
        "conversations": count,
        "write_s": round(time.perf_counter() - started, 1),
    }
    for measure in ("json.load", "stream", "job"):
        results[measure] = _in_a_process(measure, path, args)
    if args.zip:
        archive = folder / "export.zip"
        _zip(path, archive)
        results["zip_mib"] = round(archive.stat().st_size / MIB, 1)
        results["stream (zip)"] = _in_a_process("stream", archive, args)
    return results


def _zip(path: Path, archive: Path) -> None:
    """The export zipped as the assistants send it, written from the file (this process stays
    small: a child's peak counts its parent's size at the fork on Linux)."""
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.writestr("user.json", '{"id": "user-1"}')
        out.write(path, "conversations.json")


def _in_a_process(measure: str, path: Path, args) -> dict:
    command = [sys.executable, __file__, "--measure", measure, "--path", str(path)]
    command += ["--choose", str(args.choose)]
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=BASE_DIR)
    print(f"{measure}: {out.stdout.strip().splitlines()[-1]}", file=sys.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- The measures, each in its own process --------------------------------------------------------


def _rss() -> float:
    import psutil

    return psutil.Process().memory_info().rss / MIB


def _peak() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _result(before: float, started: float, **extra) -> dict:
    peak = _peak()
    return {
        "before_mib": round(before, 1),
        "peak_before_mib": round(_peak_at_start, 1),
        "peak_mib": round(peak, 1),
        "added_mib": round(peak - before, 1),
        "seconds": round(time.perf_counter() - started, 1),
        **extra,
    }


_peak_at_start = 0.0


def _start() -> tuple[float, float]:
    """The resident set now, and the clock; the peak so far is kept (it must be below the peak
    measured after, or that peak says nothing of the work)."""
    global _peak_at_start
    _peak_at_start = _peak()
    return _rss(), time.perf_counter()


def measure_json_load(args) -> dict:
    before, started = _start()
    with open(args.path, "rb") as raw:
        count = len(json.load(raw))
    return _result(before, started, conversations=count)


def _django() -> None:
    from memoryweb import bootstrap

    bootstrap.prepare()
    import django

    django.setup()


def measure_stream(args) -> dict:
    _django()
    from imports.formats import conversations, detect, open_conversations

    before, started = _start()
    with open_conversations(args.path) as (stream, _):
        kind = detect(stream)
    with open_conversations(args.path) as (stream, _):
        count = sum(1 for _ in conversations(stream, kind))
    return _result(before, started, conversations=count)


def measure_job(args) -> dict:
    os.environ.update(OPENAI_API_KEY="", EMBEDDING_BACKEND="local")
    _django()
    from django.contrib.auth import get_user_model
    from django.core.files import File
    from django.core.management import call_command

    from accounts.models import ConsentRecord
    from accounts.services import consent_set
    from imports.models import ImportJob
    from imports.services import import_run, import_start, import_upload
    from memoryweb.ai.embeddings import embed_texts

    call_command("migrate", verbosity=0)
    get_user_model().objects.filter(username=USERNAME).delete()
    user = get_user_model().objects.create_user(username=USERNAME, password=None)
    consent_set(user=user, purpose=ConsentRecord.Purpose.MEMORY, granted=True, method="bench")
    embed_texts(["warm up"])  # the model, as a worker holds it
    before, started = _start()
    try:
        with open(args.path, "rb") as raw:
            job, _ = import_upload(
                user=user, upload=File(raw, name="conversations.json"), choose=True
            )
        import_run(job_id=job.pk)  # listing (no broker: the task is called, as a worker would)
        listed, listed_peak = time.perf_counter() - started, _peak()
        job = import_start(job=job, positions=list(range(args.choose)))
        import_run(job_id=job.pk)
        job = ImportJob.objects.get(pk=job.pk)
        return _result(
            before,
            started,
            status=job.status,
            error=job.error,
            conversations_found=job.conversations_found,
            conversations_imported=job.conversations_imported,
            messages_imported=job.messages_imported,
            listing_s=round(listed, 1),
            peak_after_listing_mib=round(listed_peak, 1),
        )
    finally:
        get_user_model().objects.filter(username=USERNAME).delete()


MEASURES = {"json.load": measure_json_load, "stream": measure_stream, "job": measure_job}

if __name__ == "__main__":
    main()
