#!/usr/bin/env python3
"""Load on `POST /api/v1/context`: C clients at once, each asking one question after another.

Each client is a thread with its own keep-alive connection (http.client); each request takes a random
(API key, question) pair from the keys file. For each number of clients it reports the answers per
second and the p50/p95 latency; the counts of clients run in turns, `--rounds` times, so that the
machine's noise falls on all of them alike. Standard library only: it runs from any Python 3.11.

    python bench/context_load.py --url http://127.0.0.1:8000 --keys-file keys.json \\
        --clients 1 8 --seconds 20

The keys file is JSON: a list of {"key": "mw_…", "queries": ["…", …]}, keys with the scope
context:read (`manage.py apikey create USER --scope context:read`). `manage.py bench_scale` writes one
for the users it seeds and runs this script.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

PATH = "/api/v1/context"
TIMEOUT_SECONDS = 60


@dataclass
class Sample:
    """What one run of C clients measured."""

    clients: int
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)  # of the 200 answers
    errors: dict[str, int] = field(default_factory=dict)  # status or exception → count

    def merge(self, other: Sample) -> None:
        self.seconds += other.seconds
        self.latencies_ms += other.latencies_ms
        for reason, count in other.errors.items():
            self.errors[reason] = self.errors.get(reason, 0) + count


def read_keys(path: Path) -> list[tuple[str, str]]:
    """Every (key, question) pair of the keys file."""
    entries = json.loads(path.read_text(encoding="utf-8"))
    pairs = [(e["key"], q) for e in entries for q in e.get("queries") or []]
    if not pairs:
        raise ValueError(f"{path} holds no key with a question")
    return pairs


def run(
    url: str,
    pairs: list[tuple[str, str]],
    clients: int,
    seconds: float,
    *,
    budget_tokens: int | None = None,
    seed: int = 0,
) -> Sample:
    """`clients` threads asking for contexts for `seconds`."""
    results = [Sample(clients) for _ in range(clients)]
    start = threading.Barrier(clients + 1)
    threads = [
        threading.Thread(
            target=_client,
            args=(url, pairs, results[i], start, seconds, budget_tokens, random.Random(seed + i)),
            daemon=True,
        )
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    sample = Sample(clients, seconds=time.perf_counter() - began)
    for result in results:
        sample.merge(result)  # each thread's own seconds are 0
    return sample


def _client(url, pairs, result: Sample, start, seconds, budget_tokens, rng) -> None:
    parts = urlsplit(url)
    connection = None
    start.wait()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        key, query = rng.choice(pairs)
        body = {"query": query} | ({"budget_tokens": budget_tokens} if budget_tokens else {})
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        began = time.perf_counter()
        try:
            if connection is None:
                connection = http.client.HTTPConnection(
                    parts.hostname, parts.port or 80, timeout=TIMEOUT_SECONDS
                )
            connection.request("POST", PATH, body=json.dumps(body), headers=headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as error:
            _count(result, type(error).__name__)
            if connection is not None:
                connection.close()
            connection = None
            continue
        if response.status == 200:
            result.latencies_ms.append((time.perf_counter() - began) * 1000)
        else:
            _count(result, str(response.status))
        if response.will_close:
            connection.close()
            connection = None
    if connection is not None:
        connection.close()


def _count(result: Sample, reason: str) -> None:
    result.errors[reason] = result.errors.get(reason, 0) + 1


def measure(
    url: str,
    pairs: list[tuple[str, str]],
    clients: list[int],
    seconds: float,
    *,
    rounds: int = 3,
    warmup: float = 5.0,
    budget_tokens: int | None = None,
    log=print,
) -> dict:
    """Each count of clients `rounds` times, in turns, after `warmup` seconds at the highest count
    (the server's processes load their model and caches); the report as a dict."""
    if warmup > 0:
        run(url, pairs, max(clients), warmup, budget_tokens=budget_tokens, seed=10_000)
    merged = {c: Sample(c) for c in clients}
    throughputs: dict[int, list[float]] = {c: [] for c in clients}
    for round_ in range(rounds):
        for c in clients:
            sample = run(
                url, pairs, c, seconds, budget_tokens=budget_tokens, seed=1000 * round_ + c
            )
            merged[c].merge(sample)
            throughputs[c].append(len(sample.latencies_ms) / sample.seconds)
            log(
                f"round {round_ + 1}, {c} client(s): {throughputs[c][-1]:.1f} answers/s, "
                f"{sum(sample.errors.values())} errors"
            )
    return report(merged, throughputs)


def report(merged: dict[int, Sample], throughputs: dict[int, list[float]]) -> dict:
    rows = {}
    for c, sample in merged.items():
        rows[str(c)] = {
            "clients": c,
            "answers": len(sample.latencies_ms),
            "errors": sample.errors,
            "seconds": round(sample.seconds, 1),
            "per_s": round(len(sample.latencies_ms) / sample.seconds, 2)
            if sample.seconds
            else None,
            "per_s_rounds": [round(t, 2) for t in throughputs[c]],
            "p50_ms": _percentile(sample.latencies_ms, 50),
            "p95_ms": _percentile(sample.latencies_ms, 95),
        }
    counts = sorted(merged)
    low, high = str(counts[0]), str(counts[-1])
    ratios = {}
    if len(counts) > 1 and rows[low]["per_s"] and rows[low]["p50_ms"]:
        ratios = {
            "per_s": _ratio(rows[high]["per_s"], rows[low]["per_s"]),
            "p50_ms": _ratio(rows[high]["p50_ms"], rows[low]["p50_ms"]),
            "p95_ms": _ratio(rows[high]["p95_ms"], rows[low]["p95_ms"]),
        }
    return {"path": PATH, "by_clients": rows, "ratio": {"of": f"{high}/{low}", **ratios}}


def _percentile(values: list[float], q: int) -> float | None:
    if len(values) < 2:
        return round(values[0], 1) if values else None
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


def _ratio(a, b) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def format_report(result: dict) -> str:
    lines = [
        f"POST {result['path']}",
        f"{'clients':>7} {'answers':>8} {'errors':>6} {'answers/s':>10} {'p50 ms':>8} {'p95 ms':>8}",
    ]
    for row in result["by_clients"].values():
        lines.append(
            f"{row['clients']:>7} {row['answers']:>8} {sum(row['errors'].values()):>6} "
            f"{_num(row['per_s']):>10} {_num(row['p50_ms']):>8} {_num(row['p95_ms']):>8}"
        )
    ratio = result["ratio"]
    if len(ratio) > 1:
        lines.append(
            f"ratio {ratio['of']}: answers/s ×{_num(ratio['per_s'])}, p50 ×{_num(ratio['p50_ms'])}, "
            f"p95 ×{_num(ratio['p95_ms'])}"
        )
    return "\n".join(lines)


def _num(value) -> str:
    return "–" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="The server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--keys-file", required=True, type=Path)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--seconds", type=float, default=20.0, help="per count of clients, a round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds, not measured")
    parser.add_argument("--budget-tokens", type=int, help="default: the server's own")
    parser.add_argument("--json", type=Path, help="write the report as JSON here")
    args = parser.parse_args(argv)
    if any(c < 1 for c in args.clients) or args.seconds <= 0 or args.rounds < 1:
        parser.error("--clients, --seconds and --rounds must be positive")
    try:
        pairs = read_keys(args.keys_file)
    except (OSError, ValueError, KeyError, TypeError) as error:
        parser.error(f"cannot read the keys file: {error}")
    result = measure(
        args.url,
        pairs,
        sorted(set(args.clients)),
        args.seconds,
        rounds=args.rounds,
        warmup=args.warmup,
        budget_tokens=args.budget_tokens,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(format_report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
