"""Stand-ins for external services, each in a process of its own.

SQS and Stripe are other machines in production. Run inside the benchmark's process they
would share its GIL with the code being measured, so the month-end sync, which keeps both
busy, gets them in processes of their own: moto's SQS server (for the whole run, handed to
`LocalStack` as an existing endpoint, with two fixes to moto described below) and a Stripe
emulator with the account limits (for the month-end sync; the stack's in-process emulator
serves the other benchmarks). Each is stopped through an event and joined; nothing is
killed by name.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from .procs import spawn_context, start_process, wait_for_stop

# Two fixes to moto 5.2.5's SQS backend, for this server process only:
#  - it is not thread-safe while its server handles requests on several threads:
#    receive_message deep-copies a set that concurrent receives and deletes are changing
#    ("RuntimeError: Set changed size during iteration"), and a receive that fails half-way
#    has already hidden its messages for the visibility timeout. Calls into the backend are
#    serialised (so pollers use short polls, not long polls that would hold the lock);
#  - receive_message checks each message's retention through get_queue_attributes, which
#    recounts every message of the queue: with 1,000 queued, one receive of 10 took 1-2 s
#    (SQS answers in milliseconds at any depth). The same check reads the queue's retention
#    period directly.
_SERIALISED = ("send_message", "send_message_batch", "receive_message", "delete_message", "delete_message_batch",
               "change_message_visibility", "change_message_visibility_batch", "get_queue_attributes", "purge_queue")


def _prepare_moto_sqs() -> None:
    import functools
    import threading

    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def retained(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    setattr(SQSBackend, "is_message_valid_based_on_retention_period", retained)  # noqa: B010
    lock = threading.RLock()

    def locked(method: Any) -> Any:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)
        return call

    for name in _SERIALISED:
        setattr(SQSBackend, name, locked(getattr(SQSBackend, name)))


def sqs_server(replies: Any, stop: Any) -> None:
    from devstack.sqs_local import SqsLocal

    _prepare_moto_sqs()
    with SqsLocal(port=0) as sqs:
        replies.put(sqs.endpoint_url)
        wait_for_stop(stop, 7200)


def stripe_server(replies: Any, stop: Any, webhook_url: str | None, webhook_secret: str | None) -> None:
    from devstack.stripe_emulator import StripeEmulator

    emulator = StripeEmulator(webhook_url=webhook_url, webhook_secret=webhook_secret)  # limits: 100/s, 25/s
    replies.put(emulator.start("127.0.0.1", 0))
    try:
        wait_for_stop(stop, 7200)
    finally:
        emulator.stop()


class ChildServer:
    """Starts `target(replies, stop, *args)` in a spawned process; `url` is what it replies first."""

    def __init__(self, target: Any, *args: Any) -> None:
        context = spawn_context()
        self._replies, self._stop = context.Queue(), context.Event()
        self._process = start_process(target, (self._replies, self._stop, *args), None)
        self.url: str = self._replies.get(timeout=120)

    def stop(self) -> None:
        self._stop.set()
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=10)

    def __enter__(self) -> ChildServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class EmulatorAdmin:
    """The emulator's admin interface over HTTP (`/_emulator/...`)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, path: str) -> Any:
        request = urllib.request.Request(self.base_url + "/_emulator" + path, method=method,
                                         data=b"{}" if method == "POST" else None,
                                         headers={"Content-Type": "application/json"})
        with self._opener.open(request, timeout=30) as response:
            return json.loads(response.read())

    def request_counts(self) -> dict[str, Any]:
        counts: dict[str, Any] = self._call("GET", "/requests")
        return counts

    def reset_request_counts(self) -> None:
        self._call("POST", "/requests/reset")

    def rate_limits(self) -> dict[str, Any]:
        limits: dict[str, Any] = self._call("GET", "/rate_limits")
        return limits
