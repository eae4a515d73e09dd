"""A threaded werkzeug HTTP server on loopback, run on a background thread."""

from __future__ import annotations

import ipaddress
import threading
from typing import Any, cast

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

# How often serve_forever checks for shutdown: keeps stop() fast.
POLL_INTERVAL_S = 0.05


def ensure_loopback(host: str) -> None:
    """The emulator accepts any sk_test_ key, so it must never be reachable
    from other machines."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"refusing to bind {host!r}: the emulator listens on loopback only")


class _Handler(WSGIRequestHandler):
    verbose = False

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        if self.verbose:
            super().log_request(code, size)


class BackgroundServer:
    def __init__(self, app: Any, *, verbose: bool = False) -> None:
        self._app = app
        self._verbose = verbose
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str, port: int) -> str:
        """Bind (port 0 picks a free port) and serve; returns the base URL."""
        ensure_loopback(host)
        handler = type("Handler", (_Handler,), {"verbose": self._verbose})
        self._server = make_server(host, port, self._app, threaded=True,
                                   request_handler=handler)
        # Request threads must not keep the process alive after stop().
        cast(Any, self._server).daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL_S},
            name="stripe-emulator-http", daemon=True)
        self._thread.start()
        bound_host = f"[{host}]" if ":" in host else host
        return f"http://{bound_host}:{self._server.server_port}"

    @property
    def port(self) -> int | None:
        return self._server.server_port if self._server else None

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
