"""Load generator for the local-mode benchmark, run in its own process (so that the clients do
not compete with the emulator for the GIL): ``python -m bench.load URL CLIENTS UPLOADS SIZE``.

Prints one JSON line: every upload's latency in seconds, the wall time, and failures.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import time
from typing import Any

import requests


def main(argv: list[str]) -> None:
    url, clients, uploads, size = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    content = base64.b64encode(os.urandom(size)).decode("ascii")
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    counter = iter(range(uploads))

    def client(number: int) -> None:
        session = requests.Session()
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            body: dict[str, Any] = {
                "productId": f"BENCH-{number:03d}",
                "productName": "Benchmark",
                "price": 12.34,
                "fileName": f"file-{index % 10}.bin",
                "fileContent": content,
            }
            started = time.perf_counter()
            response = session.post(url, json=body, timeout=60)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    print(json.dumps({"latencies": latencies, "wall": wall, "failures": failures}))


if __name__ == "__main__":
    main(sys.argv[1:])
