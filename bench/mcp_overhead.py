#!/usr/bin/env python3
"""What /mcp costs over the REST API: the same question as `POST /api/v1/context` and as the MCP
tool `get_context`, and the bare MCP round trip (`tools/list`), interleaved one after another on one
keep-alive connection each, so that the machine's noise falls on all three alike. Prints p50/p95.
Standard library only.

    python bench/mcp_overhead.py --url http://127.0.0.1:8000 --key mw_… --rounds 200

The key needs the scope context:read (`manage.py apikey create USER --scope context:read`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import time
from urllib.parse import urlsplit

QUESTIONS = ["Where do I live?", "What do I eat?", "What am I working on?", "Who is my sister?"]


def _post(connection, path: str, body: dict, headers: dict) -> float:
    """One POST; its latency in ms (an answer other than 200 is an error)."""
    started = time.perf_counter()
    connection.request("POST", path, json.dumps(body), headers)
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {data[:200]!r}")
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    parts = urlsplit(args.url)
    connections = {name: http.client.HTTPConnection(parts.netloc, timeout=60) for name in "rct"}
    auth = {"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"}
    mcp = {**auth, "Accept": "application/json, text/event-stream"}
    mcp["MCP-Protocol-Version"] = "2025-11-25"
    timings: dict[str, list[float]] = {
        "REST context": [],
        "MCP get_context": [],
        "MCP tools/list": [],
    }
    for i in range(args.rounds):
        question = QUESTIONS[i % len(QUESTIONS)]
        call = {"name": "get_context", "arguments": {"query": question}}
        timings["REST context"].append(
            _post(connections["r"], "/api/v1/context", {"query": question}, auth)
        )
        timings["MCP get_context"].append(
            _post(
                connections["c"],
                "/mcp",
                {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": call},
                mcp,
            )
        )
        timings["MCP tools/list"].append(
            _post(
                connections["t"], "/mcp", {"jsonrpc": "2.0", "id": i, "method": "tools/list"}, mcp
            )
        )
    for name, values in timings.items():
        values.sort()
        p95 = values[int(len(values) * 0.95) - 1]
        print(f"{name:16} p50 {statistics.median(values):7.1f} ms   p95 {p95:7.1f} ms")


if __name__ == "__main__":
    main()
