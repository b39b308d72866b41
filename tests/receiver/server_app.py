"""A receiver for the end-to-end tests, run by `openwaba.receiver.serve` in its own process:

    python server_app.py --db Q --port P --record R [--clock C] [--fail-first N] [--block-until M] [--app-secret S]

Every successful handler call appends a JSON line `{"kind", "id", "status"}` to R; a
failing one (`--fail-first N`: the first N attempts of every item raise) appends it
with `"failed": true`. With `--block-until M` handlers wait until the file M exists.
The injected clock is wall-clock time plus the seconds written in the file C, so a
test moves time forward by writing that file instead of waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import time
from pathlib import Path

from openwaba.receiver import Event, Receiver, Status, serve


def main() -> None:
    parser = argparse.ArgumentParser()
    for option in ("--db", "--record", "--clock", "--block-until", "--app-secret"):
        parser.add_argument(option)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args()
    offset_file = Path(args.clock) if args.clock else None

    def clock() -> float:
        offset = offset_file.read_text() if offset_file and offset_file.exists() else ""
        return time.time() + float(offset or 0)

    receiver = Receiver(args.db, app_secret=args.app_secret, clock=clock, retry_delays=(30,), workers=8)
    record = open(args.record, "a", buffering=1)  # noqa: SIM115  (lives as long as the process)
    attempts: collections.Counter[str] = collections.Counter()

    async def unblocked() -> None:
        while args.block_until and not Path(args.block_until).exists():
            await asyncio.sleep(0.02)

    @receiver.on_event
    async def handle(event: Event) -> None:
        await unblocked()
        line = {"kind": event.kind, "id": getattr(event, "id", None), "status": getattr(event, "status", None)}
        key = event.key or ""
        attempts[key] += 1
        if attempts[key] <= args.fail_first:
            record.write(json.dumps({**line, "failed": True}) + "\n")
            raise RuntimeError("failing on purpose")
        record.write(json.dumps(line) + "\n")

    @receiver.on_status
    async def status(status_: Status) -> None:
        await unblocked()
        record.write(json.dumps({"kind": "on_status", "id": status_.id, "status": status_.status}) + "\n")

    serve(receiver, "127.0.0.1", args.port)


if __name__ == "__main__":
    main()
