"""Local-mode benchmark (not a test): startup time, then end-to-end latency of 100 uploads.

    .venv/bin/python -m bench.local_e2e [--uploads 100] [--size 102400]

Starts the emulator in-process on free ports (reusing an up-to-date cdk.out), uploads a file of
``--size`` bytes ``--uploads`` times through the local API, one at a time, and prints p50/p95.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import time
from typing import Any

import requests

from bench.local_mode import percentile
from local.emulator import Emulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--size", type=int, default=100 * 1024)
    args = parser.parse_args()

    started = time.perf_counter()
    with Emulator(port=0, aws_port=0) as emulator:
        startup = time.perf_counter() - started
        assert emulator.assembly is not None
        how = "synthesized" if emulator.assembly.synthesized else "reused cdk.out"
        print(f"startup: {startup:.2f} s ({how})")

        content = base64.b64encode(os.urandom(args.size)).decode()
        session = requests.Session()
        latencies: list[float] = []
        for index in range(args.uploads):
            body: dict[str, Any] = {
                "productId": "BENCH-001",
                "productName": "Benchmark",
                "price": 12.34,
                "fileName": f"file-{index % 10}.bin",
                "fileContent": content,
            }
            t0 = time.perf_counter()
            response = session.post(emulator.api_url, json=body, timeout=60)
            latencies.append(time.perf_counter() - t0)
            if response.status_code != 200:
                raise SystemExit(f"upload {index} failed: {response.status_code} {response.text}")
        ms = [s * 1000 for s in latencies]
        print(
            f"{args.uploads} uploads of {args.size} bytes: "
            f"p50 {percentile(ms, 0.50):.1f} ms, p95 {percentile(ms, 0.95):.1f} ms, "
            f"mean {statistics.fmean(ms):.1f} ms, max {max(ms):.1f} ms"
        )


if __name__ == "__main__":
    main()
