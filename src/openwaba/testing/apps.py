"""`AppServer`: runs the bot under test (any ASGI app: Starlette, FastAPI, a bare
`Receiver`) with uvicorn in a background thread, on a free port of 127.0.0.1.

A thread rather than a process keeps the bot in the test's interpreter, so a
test can look at its state; its own event loop keeps it answering while the test
blocks on a wait.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

START_TIMEOUT = 10.0


class AppServer:
    def __init__(self, app: Any) -> None:
        import uvicorn  # the [server] extra; imported here so the plugin loads without it

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="auto")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="openwaba-app", daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        sockets = [s for server in self._server.servers for s in server.sockets]
        return f"http://127.0.0.1:{sockets[0].getsockname()[1]}"

    def start(self) -> AppServer:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"the app did not start: {self._error!r}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start within {START_TIMEOUT:g} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve())
        except BaseException as exc:  # reported by start(); a thread's exception would only be printed
            self._error = exc
