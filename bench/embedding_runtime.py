"""The local embedding model on torch (sentence-transformers) against ONNX Runtime, in one run.

    .venv/bin/python bench/embedding_runtime.py [--input ../shared/data/locomo/locomo_dev.json]
        [--turns 320] [--queries 200] [--rounds 3] [--batch N] [--json OUT]

Each runtime is loaded in a process of its own (load time, memory after warm-up, whether torch was
imported), then both are timed in this process, interleaved round by round on one CPU thread
(EMBEDDING_THREADS): LoCoMo turns as the pipeline embeds them (`turn_embedding_text`) in the
pipeline's batches (`LOCAL_BATCH`, or --batch), and one short query at a time (the context's
embedding, its cache bypassed). Medians over the rounds, ONNX's ratio to torch, and the lowest
cosine between their vectors. The project's settings (the embedded database started as a one-off
command starts it) give the turns' text and the export's folder; the loading processes need only a
few settings.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
DEFAULT_INPUT = BASE_DIR.parent / "shared" / "data" / "locomo" / "locomo_dev.json"
QUERIES = (
    "What did Caroline research?",
    "When did Melanie run the charity race?",
    "What is my diet?",
    "Where did Jon and Gina go last summer, and what did they eat there?",
)


def configure(cache: str) -> None:
    from django.conf import settings

    settings.configure(EMBEDDING_THREADS=1, EMBEDDING_DIMENSIONS=384, EMBEDDING_CACHE_DIR=cache)


def encoder(runtime: str):
    from memoryweb.ai import local_model

    if runtime == "onnx":
        return local_model.OnnxEncoder(local_model.exported())
    return local_model.TorchEncoder()


def turn_texts(path: Path, count: int) -> list[str]:
    """The first `count` turns of the file as the pipeline embeds them (`turn_embedding_text`)."""
    from chat.models import Message
    from memories.episodes import turn_embedding_text
    from memories.evaluation.locomo import load

    texts: list[str] = []
    for sample in load(path):
        for session in sample.sessions:
            for turn in session.turns:
                said = Message(role=Message.Role.USER, speaker=turn.speaker, content=turn.content)
                texts.append(turn_embedding_text(said))
                if len(texts) == count:
                    return texts
    return texts


def load_report(runtime: str, cache: str) -> dict:
    """Load time, resident memory after a warm-up call, and torch's presence, in a new process."""
    code = (
        "import sys, time, json, psutil; sys.path.insert(0, sys.argv[1]);"
        "from bench.embedding_runtime import configure, encoder; configure(sys.argv[3]);"
        "t = time.perf_counter(); e = encoder(sys.argv[2]); e.encode(['warm up'], 1);"
        "print(json.dumps({'load_s': round(time.perf_counter() - t, 2),"
        " 'rss_mb': round(psutil.Process().memory_info().rss / 1e6),"
        " 'torch_imported': 'torch' in sys.modules}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(BASE_DIR), runtime, cache],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--turns", type=int, default=320)
    parser.add_argument("--queries", type=int, default=200, help="single queries per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--batch", type=int, help="the model's batches (default: the pipeline's, LOCAL_BATCH)"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not args.input.is_file():
        sys.exit(f"No data set at {args.input}: give a LoCoMo-format JSON file with --input.")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryweb.settings")
    from memoryweb import bootstrap

    bootstrap.prepare()
    import django

    django.setup()
    try:
        measure(args)
    finally:
        bootstrap.finish()


def measure(args) -> None:
    from django.conf import settings

    from memoryweb.ai.embeddings import LOCAL_BATCH

    args.batch = args.batch or LOCAL_BATCH
    cache = str(settings.EMBEDDING_CACHE_DIR)
    encoder("onnx")  # the export made (and checked) before anything is timed or loaded
    loads = {runtime: load_report(runtime, cache) for runtime in ("torch", "onnx")}
    texts = turn_texts(args.input, args.turns)
    encoders = {runtime: encoder(runtime) for runtime in ("torch", "onnx")}
    turns_per_s: dict[str, list[float]] = {name: [] for name in encoders}
    query_ms: dict[str, list[float]] = {name: [] for name in encoders}
    for round_ in range(args.rounds):
        order = list(encoders) if round_ % 2 == 0 else list(reversed(encoders))
        for name in order:
            model = encoders[name]
            start = time.perf_counter()
            for i in range(0, len(texts), 32):  # the pipeline's calls: a batch of waiting turns
                model.encode(texts[i : i + 32], args.batch)
            turns_per_s[name].append(len(texts) / (time.perf_counter() - start))
            times = []
            for i in range(args.queries):
                query = f"{QUERIES[i % len(QUERIES)]} ({i})"  # never the same text twice
                start = time.perf_counter()
                model.encode([query], args.batch)
                times.append((time.perf_counter() - start) * 1000)
            query_ms[name].append(statistics.median(times))
    vectors = {name: model.encode(texts, args.batch) for name, model in encoders.items()}
    cosine = float((vectors["torch"] * vectors["onnx"]).sum(axis=1).min())
    report = {
        "turns": len(texts),
        "rounds": args.rounds,
        "loads": loads,
        "turns_per_s": {k: [round(v, 1) for v in vs] for k, vs in turns_per_s.items()},
        "query_p50_ms": {k: [round(v, 2) for v in vs] for k, vs in query_ms.items()},
        "min_cosine": round(cosine, 7),
    }
    med = {k: statistics.median(v) for k, v in turns_per_s.items()}
    qmed = {k: statistics.median(v) for k, v in query_ms.items()}
    report["onnx_vs_torch"] = {
        "turns_per_s": round(med["onnx"] / med["torch"], 2),
        "query_speed": round(qmed["torch"] / qmed["onnx"], 2),
    }
    print(f"{len(texts)} LoCoMo turns, {args.rounds} rounds, one CPU thread")
    print("runtime  load s  RSS MB  torch  turns/s (rounds)       median  query p50 ms  median")
    for name in encoders:
        load = loads[name]
        print(
            f"{name:7}  {load['load_s']:6}  {load['rss_mb']:6}  {str(load['torch_imported']):5}  "
            f"{' '.join(f'{v:5.1f}' for v in turns_per_s[name]):22} {med[name]:6.1f}  "
            f"{' '.join(f'{v:5.2f}' for v in query_ms[name]):12}  {qmed[name]:5.2f}"
        )
    ratios = report["onnx_vs_torch"]
    print(
        f"onnx/torch: turns/s x{ratios['turns_per_s']}, query x{ratios['query_speed']} faster; "
        f"lowest cosine between their vectors {cosine:.7f}"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
