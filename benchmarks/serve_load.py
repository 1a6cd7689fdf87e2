"""Load on `tinyfer serve`, loopback only, bounded in requests and time: N concurrent clients
posting the MUG frame to /v1/predict; throughput, p50/p99 latency, errors, 503s, and the
server's RSS at start and end; beside it, `Recognizer.predict` called directly in one process
(the service's overhead per request is the difference of the medians).

python benchmarks/serve_load.py [--clients 1 4 16] [--requests 200] [--workers 2]
    [--seconds 120] [--image ../shared/data/mug_sample/img_0000.jpg]
"""

from __future__ import annotations

import argparse
import http.client
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from common import write_result

from tinyfer.inference.predict import Recognizer

MUG = Path(__file__).resolve().parents[2] / "shared" / "data" / "mug_sample" / "img_0000.jpg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def post(port: int, body: bytes) -> tuple[int, float]:
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/v1/predict", body, {"content-type": "image/jpeg"})
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - start
    finally:
        conn.close()


def load(port: int, body: bytes, clients: int, requests: int, seconds: float) -> dict:
    """``requests`` posts shared by ``clients`` threads, stopping at ``seconds`` at the latest."""
    results: list[tuple[int, float]] = []
    lock, left = threading.Lock(), [requests]
    deadline = time.monotonic() + seconds

    def client():
        while time.monotonic() < deadline:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            try:
                outcome = post(port, body)
            except OSError:
                outcome = (0, float("nan"))
            with lock:
                results.append(outcome)

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ok = [s for code, s in results if code == 200]
    return {
        "clients": clients,
        "requests": len(results),
        "ok": len(ok),
        "busy_503": sum(code == 503 for code, _ in results),
        "errors": sum(code not in (200, 503) for code, _ in results),
        "faces_per_s": round(len(ok) / wall, 1),
        "p50_ms": round(1000 * float(np.percentile(ok, 50)), 1) if ok else None,
        "p99_ms": round(1000 * float(np.percentile(ok, 99)), 1) if ok else None,
        "wall_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--queue", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--image", type=Path, default=MUG)
    parser.add_argument("--name", default="serve_load")
    args = parser.parse_args()
    body = args.image.read_bytes()

    rec = Recognizer(threads=1)
    rec.predict(body)
    direct = []
    for _ in range(min(args.requests, 100)):
        start = time.perf_counter()
        rec.predict(body)
        direct.append(time.perf_counter() - start)
    direct_ms = 1000 * float(np.median(direct))

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tinyfer", "serve", "--port", str(port), "--workers",
         str(args.workers), "--queue", str(args.queue)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(600):
            try:
                if post(port, body)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        # Every worker thread makes its recognizer on first use: warm them all up first, so
        # that the RSS figures compare a loaded server with itself.
        load(port, body, args.workers, 4 * args.workers, args.seconds)
        rss_start = rss_mb(server.pid)
        rows = []
        for clients in args.clients:
            row = load(port, body, clients, args.requests, args.seconds)
            row["server_rss_mb"] = round(rss_mb(server.pid), 1)
            print(row, flush=True)
            rows.append(row)
        one = next((r for r in rows if r["clients"] == 1), None)
        figures = {
            "image": str(args.image),
            "workers": args.workers,
            "queue": args.queue,
            "direct_recognizer_ms": round(direct_ms, 1),
            "service_overhead_ms": round(one["p50_ms"] - direct_ms, 1) if one else None,
            "server_rss_mb_start": round(rss_start, 1),
            "server_rss_mb_end": round(rss_mb(server.pid), 1),
            "load": rows,
        }
    finally:
        server.terminate()
        server.wait(30)
    print(write_result(args.name, figures, "fastapi", "uvicorn", "onnxruntime"))


if __name__ == "__main__":
    main()
