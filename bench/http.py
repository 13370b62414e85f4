"""Closed-loop HTTP load on loopback against searchd, with the in-process baseline.

    python bench/http.py ../shared/eval-data/scifact --index /tmp/scifact-index [--seconds 30]

Builds the index with `searchctl index CORPUS_DIR/corpus.jsonl` if the folder holds none,
starts `searchctl serve` on a free 127.0.0.1 port, and for each concurrency (1 and 8 by
default) runs that many clients, each sending `GET /search?q=...&k=10` with the data
set's queries in turn and waiting for each answer before the next (keep-alive
connections), for --seconds. It prints p50/p99 latency, queries per second and errors
for each, and, in the same run, the p50 of `search_results` (the same answer) in-process on the
same queries (before and after the load): the difference at concurrency 1 is what
HTTP costs. It also prints, per request, client latency minus the server's own `took_ms`.
"""

from __future__ import annotations

import sys

# This file is named like the standard library's http package; keep its folder off the
# import path so that `import http.client` finds the real one.
sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import http.client
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_queries(corpus_dir: Path) -> list[str]:
    with open(corpus_dir / "queries.jsonl") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


def client_loop(
    port: int, queries: list[str], offset: int, until: float, latencies: list, overheads: list, errors: list
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    i = offset
    while time.perf_counter() < until:
        path = "/search?" + urllib.parse.urlencode({"q": queries[i % len(queries)], "k": 10})
        i += 1
        started = time.perf_counter()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                errors.append(response.status)
                continue
        except (OSError, http.client.HTTPException) as exc:
            errors.append(repr(exc))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        latency = (time.perf_counter() - started) * 1000
        latencies.append(latency)
        # took_ms is the server's own time from request to hits: the rest is HTTP.
        overheads.append(latency - json.loads(body)["took_ms"])
    conn.close()


def load(port: int, queries: list[str], concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    overheads: list[float] = []
    errors: list = []
    until = time.perf_counter() + seconds
    threads = [
        threading.Thread(target=client_loop, args=(port, queries, n * 97, until, latencies, overheads, errors))
        for n in range(concurrency)
    ]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": len(errors),
        "qps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "http_ms_p50": round(float(np.percentile(overheads, 50)), 2),
    }


def in_process_p50(index_dir: Path, queries: list[str]) -> float:
    """p50 of the same answer made in this process: ``search_results`` with the options
    `GET /search?q=...&k=10` has (the search, snippets and the answer's shape; only the
    HTTP and JSON around them are left out)."""
    from searchcore import search_results
    from searchcore.config import Config
    from searchcore.options import SearchOptions
    from searchcore.search import Searcher

    options = SearchOptions(k=10)
    with Searcher(Config(index_dir=index_dir)) as searcher:
        search_results(searcher, ["warm-up"], options)
        times = []
        for q in queries:
            started = time.perf_counter()
            search_results(searcher, [q], options)
            times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus_dir", type=Path)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--queries", type=int, default=300, help="how many of the data set's queries to cycle through")
    args = parser.parse_args()

    if not (args.index / "index.db").exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "searchctl",
                "index",
                str(args.corpus_dir / "corpus.jsonl"),
                "--index",
                str(args.index),
                "--no-progress",
            ],
            check=True,
        )
    # The same queries in process and over HTTP, so that the two p50s compare.
    queries = load_queries(args.corpus_dir)[: args.queries]
    before = in_process_p50(args.index, queries)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "searchctl",
            "serve",
            "--index",
            str(args.index),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
    )
    try:
        deadline = time.time() + 120
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/search?q=warm-up&k=10")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline or server.poll() is not None:
                raise SystemExit("searchd did not start")
            time.sleep(0.2)
        results = [load(port, queries, c, args.seconds) for c in args.concurrency]
    finally:
        server.terminate()
        server.wait(30)
    # Measured before and after the load, so that a drift of the machine shows.
    after = in_process_p50(args.index, queries)
    baseline = (before + after) / 2
    print(
        f"in-process search_results p50: {baseline:.2f} ms (before {before:.2f}, after {after:.2f}; "
        f"{len(queries)} queries, k=10)"
    )
    print(f"{'concurrency':>11} {'requests':>9} {'errors':>6} {'QPS':>7} {'p50 ms':>8} {'p99 ms':>8} {'HTTP p50':>9}")
    for r in results:
        row = (r["concurrency"], r["requests"], r["errors"], r["qps"], r["p50_ms"], r["p99_ms"], r["http_ms_p50"])
        print("{:>11} {:>9} {:>6} {:>7} {:>8} {:>8} {:>9}".format(*row))
    one = next((r for r in results if r["concurrency"] == 1), None)
    if one:
        print(
            f"HTTP overhead at p50, concurrency 1: {one['p50_ms'] - baseline:.2f} ms over in-process "
            f"(client latency minus the server's own search time: {one['http_ms_p50']:.2f} ms)"
        )


if __name__ == "__main__":
    main()
