"""A real webhook receiver on 127.0.0.1 for the webhooks tests: a threaded HTTP server that
checks every delivery's ``Flashpay-Signature`` with the endpoint's secret (through the public
``flashpay.webhooks.verify``, as a merchant's server would) and answers from a script of status
codes (the last one repeats), optionally holding a request until released."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from flashpay.webhooks import SIGNATURE_HEADER, SignatureError, verify


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    problem: str | None

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=lambda: [200])
    secret: str = ""
    now_seconds: Callable[[], int] | None = None
    hold: threading.Event | None = None  # when set: requests wait until it is set
    received: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/flashpay"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                problem = None
                try:
                    now = None if receiver.now_seconds is None else receiver.now_seconds()
                    verify(receiver.secret, self.headers.get(SIGNATURE_HEADER, ""), body,
                           now_seconds=now)  # fmt: skip
                except SignatureError as exc:
                    problem = exc.problem.value
                n = len(receiver.received)
                receiver.received.append(
                    Received(self.path, dict(self.headers.items()), body, problem is None, problem)
                )
                receiver.arrived.set()
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                status = receiver.statuses[min(n, len(receiver.statuses) - 1)]
                if problem is not None:
                    status = 400
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender is gone (a worker killed mid-delivery)
                    pass

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
