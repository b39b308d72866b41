"""Running a receiver on its own: `serve(receiver, host, port)` (what `openwaba receive` calls).

uvicorn is imported only here, so `import openwaba.receiver` stays stdlib-only;
uvloop and httptools are used when they are installed (`uvicorn[standard]`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable

from openwaba.receiver.app import Receive, Scope, Send

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def serve(receiver: ASGIApp, host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "warning") -> None:
    """Serve a Receiver (or an ASGI app around one) with uvicorn until SIGINT/SIGTERM.

    ASGI lifespan starts the receiver's workers and stops them on the way out.
    """
    import uvicorn

    uvicorn.run(
        receiver,
        host=host,
        port=port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        lifespan="on",
        access_log=False,
        log_level=log_level,
    )
