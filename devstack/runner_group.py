"""Several event source mappings driven as one: the table stream with the sync queue, plus the
customer webhook delivery queue (``deliver_webhooks``), as Lambda runs each mapping on its own.

``RunnerGroup`` offers what callers use of an ``EventRunner`` (``poll_once``, ``run_until_idle``,
``start``, ``stop``, ``running``); everything else (``stats``, ``failed_batches``, ``stream_arn``,
...) is the first runner's, the one with the stream and the sync queue.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Mapping
from typing import Any

DELIVERY_HANDLER_NAME = "deliver_webhooks"


class RunnerGroup:
    def __init__(self, primary: Any, *others: Any) -> None:
        self.primary = primary
        self.runners = [primary, *others]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.primary, name)

    def _handled(self) -> int:
        return sum(r.stats["stream_records"] + r.stats["sqs_messages"] for r in self.runners)

    def poll_once(self, sqs_wait_seconds: int | None = None) -> int:
        return sum(runner.poll_once(sqs_wait_seconds=sqs_wait_seconds) for runner in self.runners)

    def run_until_idle(self, timeout_s: float = 30.0) -> int:
        """Until a whole round over every runner finds nothing new: a delivery can follow a stream record
        (an event stored by the stream handler arrives as its own stream record, then as a delivery)."""
        deadline = time.monotonic() + timeout_s
        handled = 0
        while True:
            before = self._handled()
            for runner in self.runners:
                handled += runner.run_until_idle(max(0.1, deadline - time.monotonic()))
            if self._handled() == before:
                return handled
            if time.monotonic() >= deadline:
                raise TimeoutError(f"event sources still busy after {timeout_s:.1f}s")

    def start(self) -> RunnerGroup:
        for runner in self.runners:
            runner.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        for runner in self.runners:
            runner.stop(timeout_s)

    @property
    def running(self) -> bool:
        return all(runner.running for runner in self.runners)

    def __enter__(self) -> RunnerGroup:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def delivery_runner(module_name: str = "app", environ: Mapping[str, str] | None = None, **options: Any) -> Any:
    """An ``EventRunner`` for the app's ``deliver_webhooks`` on ``DELIVERY_QUEUE_URL``; None if either is missing."""
    from devstack.event_runner import DEFAULT_APP_NAME, EventRunner

    env = os.environ if environ is None else environ
    handler = getattr(importlib.import_module(module_name), DELIVERY_HANDLER_NAME, None)
    queue_url = env.get("DELIVERY_QUEUE_URL")
    if handler is None or not queue_url:
        return None
    stage = env.get("STAGE", "local")
    return EventRunner(
        None, handler, queue_url=queue_url, sqs_endpoint=env.get("AWS_ENDPOINT_URL_SQS") or None,
        region=env.get("AWS_DEFAULT_REGION") or "us-east-1",
        sqs_function_name=f"{DEFAULT_APP_NAME}-{stage}-{DELIVERY_HANDLER_NAME}", **options,
    )


def with_deliveries(runner: Any, module_name: str = "app", environ: Mapping[str, str] | None = None,
                    **options: Any) -> Any:
    """``runner`` grouped with the delivery queue's runner, or ``runner`` alone if the app has none."""
    deliveries = delivery_runner(module_name, environ, **options)
    return runner if deliveries is None else RunnerGroup(runner, deliveries)
