"""Per-destination concurrency limit and operational notices, through the real server."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from .support import ServerFactory, free_port, wait_until

pytestmark = pytest.mark.e2e


class SlowCounter:
    """A receiver that answers 200 after `delay` seconds and records the peak of requests in flight."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.in_flight = 0
        self.peak = 0
        self.done = 0
        self.lock = threading.Lock()
        counter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with counter.lock:
                    counter.in_flight += 1
                    counter.peak = max(counter.peak, counter.in_flight)
                time.sleep(counter.delay)
                with counter.lock:
                    counter.in_flight -= 1
                    counter.done += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(("limit", "expect_peak"), [("2", (2, 2)), ("16", (5, 16))], ids=["limit-2", "default-16"])
def test_requests_in_flight_to_one_destination_are_bounded(
    server: ServerFactory, limit: str, expect_peak: tuple[int, int]
) -> None:
    receiver = SlowCounter(delay=0.4)
    try:
        srv = server({"OPENWABA_DESTINATION_CONCURRENCY": limit})
        srv.set_webhook(receiver.url)
        # Ten unknown recipients: ten `failed` statuses in ten conversations, all due at once,
        # so only the destination limit (not conversation order) bounds the parallelism.
        for i in range(10):
            srv.send_text(f"4915100000{i:02d}", "hi")
        wait_until(lambda: receiver.done >= 10 or None, what="all ten deliveries")
        low, high = expect_peak
        assert low <= receiver.peak <= high, f"peak in flight {receiver.peak}, expected {low}..{high}"
    finally:
        receiver.close()


def test_a_410_leaves_a_notice(server: ServerFactory) -> None:
    srv = server()
    gone = _gone_receiver()
    try:
        srv.set_webhook(gone[1])
        srv.send_text("15551230001", "hi")
        notices = wait_until(lambda: srv.ok("GET", "/notices")["notices"] or None, what="a notice")
        assert notices[0]["kind"] == "destination_disabled"
        assert "410" in notices[0]["detail"] and gone[1] in notices[0]["detail"]
    finally:
        gone[0].shutdown()
        gone[0].server_close()


def _gone_receiver() -> tuple[ThreadingHTTPServer, str]:
    class Gone(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(410)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Gone)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/gone"
