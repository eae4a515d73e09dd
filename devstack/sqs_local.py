"""A local SQS endpoint: moto in server mode, bound to 127.0.0.1.

In-process (tests)::

    with SqsLocal() as sqs:
        boto3.client("sqs", endpoint_url=sqs.endpoint_url, ...)

As its own process (long-running local stack)::

    python -m devstack.sqs_local --port 9324

prints the endpoint URL on one line once it listens, then serves until
SIGINT/SIGTERM.

Note: moto keeps its state in module-level backends. An in-process server shares
them with any ``moto.mock_aws`` used in the same process, and ``mock_aws``
resets them when it starts and stops, so do not mix the two in one test
process while a server holds state you need (run the server as a separate
process instead).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence

from devstack.local_aws import LOOPBACK, readiness_probe

__all__ = ["SqsLocal", "SqsLocalError", "main"]



class SqsLocalError(RuntimeError):
    """The local SQS server could not be started or reached."""


class SqsLocal:
    """moto's ThreadedMotoServer on ``host`` (default 127.0.0.1).

    ``port=0`` lets the OS pick a free port (no race: the server binds it
    directly). ``start()`` returns the endpoint URL once a ListQueues call
    succeeds.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = LOOPBACK,
        startup_timeout: float = 30.0,
        log_requests: bool = False,
    ) -> None:
        if not 0 <= int(port) <= 65535:
            raise ValueError(f"invalid port {port}")
        self._requested_port = int(port)
        self._host = host
        self._startup_timeout = startup_timeout
        self._log_requests = log_requests
        self._server = None
        self._port: int | None = None
        self._lock = threading.Lock()

    @property
    def endpoint_url(self) -> str:
        if self._port is None:
            raise SqsLocalError("local SQS is not running")
        host = LOOPBACK if self._host in ("0.0.0.0", "") else self._host
        return f"http://{host}:{self._port}"

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        with self._lock:
            if self._server is not None:
                return self.endpoint_url
            from moto.server import ThreadedMotoServer

            if not self._log_requests:
                # werkzeug logs one line per request at INFO. The logger is
                # process-wide: only quieten it if nobody configured it.
                werkzeug_logger = logging.getLogger("werkzeug")
                if werkzeug_logger.level == logging.NOTSET:
                    werkzeug_logger.setLevel(logging.WARNING)
            server = ThreadedMotoServer(ip_address=self._host, port=self._requested_port, verbose=False)
            try:
                server.start()
            except OSError as exc:
                raise SqsLocalError(f"cannot listen on {self._host}:{self._requested_port}: {exc}") from exc
            self._server = server
            self._port = int(server.get_host_and_port()[1])
            try:
                self._wait_ready()
            except BaseException:
                self._shutdown()
                raise
            return self.endpoint_url

    def stop(self) -> None:
        with self._lock:
            self._shutdown()

    def __enter__(self) -> SqsLocal:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _shutdown(self) -> None:
        server, self._server = self._server, None
        self._port = None
        if server is not None:
            server.stop()

    def _wait_ready(self) -> None:
        answers = readiness_probe("sqs", self.endpoint_url)
        deadline = time.monotonic() + self._startup_timeout
        while not answers():
            if time.monotonic() >= deadline:
                raise SqsLocalError(f"local SQS did not answer within {self._startup_timeout:.0f}s")
            time.sleep(0.05)  # readiness poll, bounded by the deadline


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.sqs_local",
        description="Serve a local SQS endpoint (moto) until interrupted.",
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default=LOOPBACK, help="listen address (default 127.0.0.1)")
    parser.add_argument("--log-requests", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    server = SqsLocal(port=args.port, host=args.host, log_requests=args.log_requests)
    try:
        print(server.start(), flush=True)
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
