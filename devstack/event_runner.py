"""Lambda event source mappings, locally.

``EventRunner`` polls the table's DynamoDB stream (``devstack/stream_source.py``) and the SQS sync queue
(``devstack/sqs_source.py``) the way Lambda's event source mappings do, and calls the same Chalice
handlers with events of Lambda's exact shape (``devstack/lambda_events.py``).

Handlers are plain callables ``handler(event_dict, context)``. A Chalice
``@app.on_dynamodb_record`` / ``@app.on_sqs_message`` function is one: calling it
wraps the dict in Chalice's event class, runs the middleware and returns the
function's return value, as in Lambda.

Differences from AWS: one poller per source (shards are read one batch at a time
in turn, SQS batches one at a time), no batching window, no maximum record age.

As a process of its own: ``python -m devstack.event_runner_cli`` (see there).
"""

from __future__ import annotations

import collections
import importlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from devstack import local_aws
from devstack.lambda_events import Function, LambdaContext
from devstack.sqs_source import SqsSource
from devstack.stream_source import FailedStreamBatch, StreamOptions, StreamSource

__all__ = [
    "EventRunner",
    "FailedStreamBatch",
    "LambdaContext",
    "MissingHandlersError",
    "load_app_handlers",
]

logger = logging.getLogger("devstack.event_runner")

Handler = Callable[[dict[str, Any], Any], Any]

STREAM_HANDLER_NAME = "handle_table_changes"
SQS_HANDLER_NAME = "sync_invoices"
DEFAULT_APP_NAME = "usage-invoicing"
EXIT_NO_HANDLERS = 3


class MissingHandlersError(RuntimeError):
    """The application module defines neither event handler (yet)."""


@dataclass
class _SourceState:
    """Idle bookkeeping of one poller, for run_until_idle in background mode."""

    last_idle_pass_start: float = -1.0
    passes: int = 0


def _client(service: str, endpoint: str | None, region: str, read_timeout: float = 30.0) -> Any:
    return local_aws.client(service, endpoint, region, connect_timeout=2, read_timeout=read_timeout,
                            retries={"mode": "standard", "max_attempts": 3})


class EventRunner:
    """Polls the table stream and the sync queue and invokes the handlers.

    ``stream_handler`` / ``sqs_handler`` may be ``None``: that source is not polled.
    Endpoints default to ``AWS_ENDPOINT_URL_DYNAMODB_STREAMS`` / ``AWS_ENDPOINT_URL_SQS``
    (boto3 reads them itself), the region to ``AWS_DEFAULT_REGION``.
    ``max_retries=-1`` retries a failing stream batch forever (AWS's default).
    """

    def __init__(
        self,
        stream_handler: Handler | None,
        sqs_handler: Handler | None,
        *,
        stream_arn: str | None = None,
        queue_url: str | None = None,
        queue_arn: str | None = None,
        dynamodb_streams_endpoint: str | None = None,
        sqs_endpoint: str | None = None,
        region: str | None = None,
        batch_size: int = 100,
        sqs_batch_size: int = 10,
        max_retries: int = 10,
        bisect_on_error: bool = True,
        starting_position: str = "TRIM_HORIZON",
        sqs_wait_seconds: int = 1,
        idle_backoff_s: float = 0.1,
        on_failure_queue_url: str | None = None,
        stream_function_name: str = f"{DEFAULT_APP_NAME}-local-{STREAM_HANDLER_NAME}",
        sqs_function_name: str = f"{DEFAULT_APP_NAME}-local-{SQS_HANDLER_NAME}",
        stream_timeout_s: float = 30.0,
        sqs_timeout_s: float = 60.0,
        memory_limit_in_mb: int = 512,
    ) -> None:
        if not 1 <= batch_size <= 10000:
            raise ValueError("batch_size must be 1..10000")
        if not 1 <= sqs_batch_size <= 10:
            raise ValueError("sqs_batch_size must be 1..10 (ReceiveMessage returns at most 10)")
        if starting_position not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError("starting_position must be TRIM_HORIZON or LATEST")
        if stream_handler is not None and not stream_arn:
            raise ValueError("stream_arn is required with a stream handler")
        if sqs_handler is not None and not queue_url:
            raise ValueError("queue_url is required with an SQS handler")
        self.stream_handler = stream_handler
        self.sqs_handler = sqs_handler
        self.stream_arn = stream_arn
        self.queue_url = queue_url
        self._queue_arn = queue_arn
        self.region = region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
        self.sqs_wait_seconds = sqs_wait_seconds
        self.idle_backoff_s = idle_backoff_s
        self.on_failure_queue_url = on_failure_queue_url
        self._streams_endpoint = dynamodb_streams_endpoint
        self._sqs_endpoint = sqs_endpoint
        self._streams_client: Any = None
        self._sqs_client: Any = None
        self.stats: collections.Counter[str] = collections.Counter()

        def function(handler: Handler, name: str, timeout_s: float) -> Function:
            def context() -> LambdaContext:
                return LambdaContext(name, timeout_s=timeout_s, memory_limit_in_mb=memory_limit_in_mb,
                                     region=self.region)

            return Function(handler, context, self.region, self.stats)

        self._stream = None if stream_handler is None else StreamSource(
            function(stream_handler, stream_function_name, stream_timeout_s), str(stream_arn), lambda: self.streams,
            StreamOptions(batch_size, max_retries, bisect_on_error, starting_position), self._send_failed_batch)
        self._queue = None if sqs_handler is None else SqsSource(
            function(sqs_handler, sqs_function_name, sqs_timeout_s), str(queue_url), lambda: self.sqs,
            lambda: self.queue_arn, sqs_batch_size, sqs_wait_seconds)

        self._state = threading.Condition()
        self._sources: dict[str, _SourceState] = {}
        self._last_activity = -1.0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- construction helpers ---------------------------------------------------
    @classmethod
    def from_environment(
        cls,
        stream_handler: Handler | None,
        sqs_handler: Handler | None,
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> EventRunner:
        """Settings from the app's variables: TABLE_STREAM_ARN (else the table's latest
        stream), SYNC_QUEUE_URL, AWS_ENDPOINT_URL_DYNAMODB_STREAMS, AWS_ENDPOINT_URL_SQS."""
        env = os.environ if environ is None else environ
        region = options.pop("region", None) or env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or "us-east-1"
        streams_endpoint = options.pop("dynamodb_streams_endpoint", None) or env.get(
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS"
        ) or env.get("AWS_ENDPOINT_URL_DYNAMODB") or None
        sqs_endpoint = options.pop("sqs_endpoint", None) or env.get("AWS_ENDPOINT_URL_SQS") or None
        stream_arn = options.pop("stream_arn", None) or env.get("TABLE_STREAM_ARN") or None
        if stream_handler is not None and not stream_arn:
            table = env.get("TABLE_NAME")
            if not table:
                raise ValueError("set TABLE_STREAM_ARN or TABLE_NAME")
            ddb = _client("dynamodb", env.get("AWS_ENDPOINT_URL_DYNAMODB") or None, region)
            stream_arn = ddb.describe_table(TableName=table)["Table"].get("LatestStreamArn")
            if not stream_arn:
                raise ValueError(f"table {table} has no stream")
        queue_url = options.pop("queue_url", None) or env.get("SYNC_QUEUE_URL") or None
        stage = env.get("STAGE", "local")
        options.setdefault("stream_function_name", f"{DEFAULT_APP_NAME}-{stage}-{STREAM_HANDLER_NAME}")
        options.setdefault("sqs_function_name", f"{DEFAULT_APP_NAME}-{stage}-{SQS_HANDLER_NAME}")
        return cls(
            stream_handler,
            sqs_handler,
            stream_arn=stream_arn,
            queue_url=queue_url,
            dynamodb_streams_endpoint=streams_endpoint,
            sqs_endpoint=sqs_endpoint,
            region=region,
            **options,
        )

    # -- clients ------------------------------------------------------------------
    @property
    def streams(self) -> Any:
        if self._streams_client is None:
            self._streams_client = _client("dynamodbstreams", self._streams_endpoint, self.region)
        return self._streams_client

    @property
    def sqs(self) -> Any:
        if self._sqs_client is None:
            self._sqs_client = _client("sqs", self._sqs_endpoint, self.region,
                                       read_timeout=max(30.0, self.sqs_wait_seconds + 10.0))
        return self._sqs_client

    @property
    def queue_arn(self) -> str:
        if self._queue_arn is None:
            attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
            self._queue_arn = attributes["Attributes"]["QueueArn"]
        return self._queue_arn

    # -- public API -----------------------------------------------------------------
    def poll_once(self, sqs_wait_seconds: int | None = None) -> int:
        """One pass: a batch from every readable shard, then one SQS batch.

        Returns the number of stream records and SQS messages handled.
        """
        stream = self._stream.poll() if self._stream is not None else 0
        return stream + (self._queue.poll(sqs_wait_seconds) if self._queue is not None else 0)

    def run_until_idle(self, timeout_s: float = 30.0) -> int:
        """Poll until a full pass over the stream and the queue finds nothing new.

        Messages that are in flight (invisible until their visibility timeout ends)
        are not waited for. With the background threads running, waits until each
        of them has completed an empty pass that began after the last activity.
        Returns the records/messages handled by this call (0 in background mode);
        raises ``TimeoutError`` at the deadline.
        """
        deadline = time.monotonic() + timeout_s
        if self.running:
            return self._wait_background_idle(deadline, timeout_s)
        handled = 0
        while True:
            count = self.poll_once(sqs_wait_seconds=0)
            handled += count
            if count == 0:
                return handled
            if time.monotonic() >= deadline:
                raise TimeoutError(f"event sources still busy after {timeout_s:.1f}s ({handled} handled)")

    def start(self) -> EventRunner:
        """Poll in background threads (one per source) until ``stop()``."""
        if self.running:
            return self
        self._stop.clear()
        self._threads = []
        if self.stream_handler is not None:
            self._threads.append(threading.Thread(target=self._loop, args=("stream",),
                                                  name="event-runner-stream", daemon=True))
        if self.sqs_handler is not None:
            self._threads.append(threading.Thread(target=self._loop, args=("sqs",),
                                                  name="event-runner-sqs", daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the background threads; an invocation in progress completes first."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        alive = [t.name for t in self._threads if t.is_alive()]
        self._threads = []
        if alive:
            logger.warning("event runner threads still running after %.0fs: %s", timeout_s, alive)

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def __enter__(self) -> EventRunner:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- background loop ------------------------------------------------------------
    def _loop(self, source: str) -> None:
        source_object = self._stream if source == "stream" else self._queue
        assert source_object is not None
        poll: Callable[[], int] = source_object.poll
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                count = poll()
            except Exception:
                logger.exception("event runner: %s poll failed", source)
                count = -1
            self._record_pass(source, started, count)
            if count <= 0:
                self._stop.wait(self.idle_backoff_s if count == 0 else 1.0)

    def _record_pass(self, source: str, started: float, count: int) -> None:
        with self._state:
            state = self._sources.setdefault(source, _SourceState())
            state.passes += 1
            if count == 0:
                state.last_idle_pass_start = started
            elif count > 0:
                self._last_activity = time.monotonic()
            self._state.notify_all()

    def _wait_background_idle(self, deadline: float, timeout_s: float) -> int:
        called = time.monotonic()
        sources = [name for name, handler in (("stream", self.stream_handler), ("sqs", self.sqs_handler))
                   if handler is not None]
        with self._state:
            while True:
                floor = max(called, self._last_activity)
                if all(name in self._sources and self._sources[name].last_idle_pass_start > floor
                       for name in sources):
                    return 0
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"event sources still busy after {timeout_s:.1f}s")
                self._state.wait(min(remaining, 0.5))

    # -- the on-failure destination ---------------------------------------------------
    @property
    def failed_batches(self) -> list[FailedStreamBatch]:
        return self._stream.failed_batches if self._stream is not None else []

    def _send_failed_batch(self, message: dict[str, Any]) -> None:
        if not self.on_failure_queue_url:
            return
        try:
            self.sqs.send_message(QueueUrl=self.on_failure_queue_url, MessageBody=json.dumps(message))
        except Exception:
            logger.exception("could not send the failed batch to %s", self.on_failure_queue_url)


# -- the application's handlers ----------------------------------------------------------


@dataclass(frozen=True)
class AppHandlers:
    stream_handler: Handler | None
    sqs_handler: Handler | None
    stream_batch_size: int | None = None
    sqs_batch_size: int | None = None

    def runner_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.stream_batch_size:
            options["batch_size"] = self.stream_batch_size
        if self.sqs_batch_size:
            options["sqs_batch_size"] = min(10, self.sqs_batch_size)
        return options


def load_app_handlers(module_name: str = "app", *, required: bool = True) -> AppHandlers:
    """``handle_table_changes`` and ``sync_invoices`` from the Chalice app module.

    Batch sizes come from their decorators. Raises ``MissingHandlersError`` if
    neither exists and ``required``.
    """
    module = importlib.import_module(module_name)
    stream_handler = getattr(module, STREAM_HANDLER_NAME, None)
    sqs_handler = getattr(module, SQS_HANDLER_NAME, None)
    if stream_handler is None and sqs_handler is None and required:
        raise MissingHandlersError(
            f"{module_name}.py defines neither {STREAM_HANDLER_NAME} (@app.on_dynamodb_record) "
            f"nor {SQS_HANDLER_NAME} (@app.on_sqs_message)"
        )
    batch_sizes: dict[str, int] = {}
    chalice_app = getattr(module, "app", None)
    for source in getattr(chalice_app, "event_sources", []) or []:
        name = getattr(source, "name", None)
        if name in (STREAM_HANDLER_NAME, SQS_HANDLER_NAME) and getattr(source, "batch_size", None):
            batch_sizes[name] = int(source.batch_size)
    return AppHandlers(
        stream_handler=stream_handler,
        sqs_handler=sqs_handler,
        stream_batch_size=batch_sizes.get(STREAM_HANDLER_NAME),
        sqs_batch_size=batch_sizes.get(SQS_HANDLER_NAME),
    )
