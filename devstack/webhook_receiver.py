"""A customer's webhook endpoint, locally: verifies each delivery's signature and records it.

Used by the tests and the demo::

    receiver = WebhookReceiver().start()        # http://127.0.0.1:<port>/hooks
    ... register receiver.url, then: receiver.secret = <the secret shown once>
    receiver.down(); receiver.up()              # an outage: connections refused, then back on the same port
    receiver.fail_next(3)                        # answer 500 to the next three deliveries
    receiver.event_ids()                         # what a receiver that dedups by id has seen

Verification is the README's recipe: ``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<payload>")>``,
refused when the MAC differs or ``t`` is more than five minutes away.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SIGNATURE_HEADER = "Invoicing-Signature"
TOLERANCE_SECONDS = 300
PATH = "/hooks"


def verified(payload: bytes, header: str, secret: str, now: float | None = None) -> bool:
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        stamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    fresh = abs((time.time() if now is None else now) - stamp) <= TOLERANCE_SECONDS
    return fresh and hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass(frozen=True)
class Received:
    event_id: str
    type: str
    verified: bool
    status: int
    at: float
    body: dict[str, Any]
    payload: bytes
    signature: str


class WebhookReceiver:
    def __init__(self, secret: str | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.secret = secret
        self.other_secrets: set[str] = set()  # one receiver standing in for several endpoints
        self.host, self.port = host, port
        self._lock = threading.Lock()
        self._failures_left = 0
        self._failure_status = 500
        self.received: list[Received] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{PATH}"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                payload = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver._answer(payload, self.headers.get(SIGNATURE_HEADER, ""))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def down(self) -> None:
        """An outage: nothing listens on the port until `up()`."""
        self.stop()

    def up(self) -> None:
        self.start()

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._failures_left, self._failure_status = count, status

    def _answer(self, payload: bytes, signature: str) -> int:
        known = ({self.secret} if self.secret else set()) | self.other_secrets
        ok = any(verified(payload, signature, secret) for secret in known)
        try:
            body = json.loads(payload)
        except ValueError:
            body = {}
        with self._lock:
            if not ok:
                status = 400
            elif self._failures_left > 0:
                self._failures_left -= 1
                status = self._failure_status
            else:
                status = 200
            self.received.append(Received(str(body.get("id", "")), str(body.get("type", "")), ok, status,
                                          time.time(), body, payload, signature))
        return status

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.status == 200]

    def event_ids(self) -> set[str]:
        """The ids a receiver that dedups by id has processed."""
        return {r.event_id for r in self.accepted()}

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
