"""The export is read as a stream: reading a generated export of tens of megabytes holds a few
megabytes at most, whatever its size (bench/import_memory.py measures 200 MB)."""

from __future__ import annotations

import json
import tracemalloc

from imports.formats import conversations, detect, open_conversations
from tests.imports.exports import as_zip, write_chatgpt_export

PEAK_LIMIT = 4 * 1024 * 1024


def _peak_of_reading(path) -> tuple[int, int]:
    """(conversations read, the peak of Python's allocations meanwhile)."""
    tracemalloc.start()
    try:
        with open_conversations(path) as (stream, _):
            read = sum(1 for _ in conversations(stream, detect_kind(path)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return read, peak


def detect_kind(path) -> str:
    with open_conversations(path) as (stream, _):
        return detect(stream)


def test_reading_a_30_mb_export_holds_a_few_megabytes(tmp_path):
    path = tmp_path / "conversations.json"
    count = write_chatgpt_export(path, size=30 * 1024 * 1024)
    assert path.stat().st_size > 30 * 1024 * 1024

    read, peak = _peak_of_reading(path)

    assert read == count
    assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.1f} MiB"


def test_reading_from_inside_a_zip_holds_a_few_megabytes_too(tmp_path):
    plain = tmp_path / "conversations.json"
    count = write_chatgpt_export(plain, size=10 * 1024 * 1024)
    archive = tmp_path / "export.zip"
    archive.write_bytes(as_zip(plain.read_bytes()))

    read, peak = _peak_of_reading(archive)

    assert read == count
    assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.1f} MiB"


def test_the_measure_sees_a_whole_file_read(tmp_path):
    """The same measure over json.load of the file: far past the limit (so the bound above is
    real)."""
    path = tmp_path / "conversations.json"
    write_chatgpt_export(path, size=5 * 1024 * 1024)
    tracemalloc.start()
    try:
        with open(path, "rb") as raw:
            json.load(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak > 3 * PEAK_LIMIT
