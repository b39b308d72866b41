"""What the pytest plugin costs a test suite: starting the session's gateway, and
creating the number each test gets (Partner API: channel + key + users).

    .venv/bin/python bench/plugin_overhead.py [--numbers 50] [--starts 5]

Prints medians and p90s in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from openwaba.client import Client
from openwaba.client.target import Target
from openwaba.testing import Gateway, GatewayProcess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--numbers", type=int, default=50)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    starts: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.starts):
            began = time.perf_counter()
            process = GatewayProcess(Path(tmp) / f"start{n}").start()
            starts.append((time.perf_counter() - began) * 1000)
            if n < args.starts - 1:
                process.stop()
        try:
            creations = _numbers(process, args.numbers)
        finally:
            process.stop()
    _report("gateway start (subprocess, ready)", starts)
    _report("number per test (Gateway.create)", creations)


def _numbers(process: GatewayProcess, count: int) -> list[float]:
    with Client(Target.partner(process.partner_key, process.partner_id, process.url)) as partner:
        waba = str(partner.create_waba("bench")["id"])
    timings = []
    for _ in range(count):
        began = time.perf_counter()
        number = Gateway.create(process.url, process.partner_key, process.partner_id, waba)
        timings.append((time.perf_counter() - began) * 1000)
        number.close()
    return timings


def _report(what: str, millis: list[float]) -> None:
    ordered = sorted(millis)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    print(f"{what:<40} n={len(millis):<4} median {statistics.median(millis):7.1f} ms   p90 {p90:7.1f} ms")


if __name__ == "__main__":
    main()
