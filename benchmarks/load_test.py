"""Load test for `textcnn serve`, on loopback only: a bounded number of POST /predict requests,
a bounded number in flight at once; prints requests/s and latency percentiles as JSON.

    # against a running server
    .venv/bin/python scripts/load_test.py --url http://127.0.0.1:8000 --requests 2000 --concurrency 16
    # or start one from a checkpoint (a child process on a free loopback port), measure, stop it
    .venv/bin/python scripts/load_test.py --checkpoint CKPT --requests 2000 --concurrency 16

Request texts are real sentences from a dataset split (default: SST-2 validation). The client runs on
the same machine as the server, so on a small machine the figures include the client's CPU use.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import datasets
import httpx

from benchmarks import DATA_DIR, ROOT

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_REQUESTS, MAX_CONCURRENCY = 100_000, 256
STARTUP_TIMEOUT_S = 120


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


async def run_load(url: str, texts: list[str], requests: int, concurrency: int, per_request: int) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    next_request = iter(range(requests))

    async def worker(client: httpx.AsyncClient) -> None:
        for index in next_request:  # shared iterator: exactly `requests` requests in all
            start = index * per_request % len(texts)
            body = {"texts": (texts[start : start + per_request] + texts)[:per_request]}
            began = time.perf_counter()
            response = await client.post(f"{url}/predict", json=body)
            latencies.append(time.perf_counter() - began)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:
        for _ in range(min(20, requests)):  # warm-up: connections, threads, allocator
            await client.post(f"{url}/predict", json={"texts": texts[:per_request]})
        began = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": requests,
        "concurrency": concurrency,
        "texts_per_request": per_request,
        "status_codes": statuses,
        "seconds": round(elapsed, 3),
        "requests_per_s": round(requests / elapsed, 1),
        "texts_per_s": round(requests * per_request / elapsed, 1),
        "latency_ms": {
            "p50": round(1000 * percentile(latencies, 0.50), 2),
            "p90": round(1000 * percentile(latencies, 0.90), 2),
            "p99": round(1000 * percentile(latencies, 0.99), 2),
            "max": round(1000 * latencies[-1], 2),
            "mean": round(1000 * statistics.fmean(latencies), 2),
        },
    }


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def server_process(checkpoint: str, extra: list[str]) -> Iterator[str]:
    """`textcnn serve` on a free loopback port until the block ends."""
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "textcnn", "serve", "--checkpoint", checkpoint, "--port", str(port), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise SystemExit(f"error: the server exited with status {process.returncode}; run textcnn serve to see why")
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"error: the server did not answer /health within {STARTUP_TIMEOUT_S} s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="a running server on loopback, e.g. http://127.0.0.1:8000")
    target.add_argument("--checkpoint", help="start textcnn serve with this checkpoint or export directory")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    parser.add_argument("--texts-per-request", type=int, default=1)
    parser.add_argument("--dataset", default=str(DATA_DIR / "sst2"))
    parser.add_argument("--split", default="validation")
    parser.add_argument("--text-column", default="text")
    args = parser.parse_args()
    if not 1 <= args.requests <= MAX_REQUESTS or not 1 <= args.concurrency <= MAX_CONCURRENCY:
        parser.error(f"--requests must be in [1, {MAX_REQUESTS}] and --concurrency in [1, {MAX_CONCURRENCY}]")
    if args.texts_per_request < 1:
        parser.error("--texts-per-request must be positive")
    if args.url and urlparse(args.url).hostname not in LOOPBACK:
        parser.error(f"--url must be a loopback address ({', '.join(sorted(LOOPBACK))}); this script loads only local servers")
    texts = [text or "" for text in datasets.load_dataset(args.dataset, split=args.split)[args.text_column]]

    def measure(url: str) -> dict:
        return asyncio.run(run_load(url.rstrip("/"), texts, args.requests, args.concurrency, args.texts_per_request))

    if args.url:
        report = measure(args.url)
    else:
        with server_process(args.checkpoint, ["--max-texts", str(max(64, args.texts_per_request))]) as url:
            report = measure(url)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
