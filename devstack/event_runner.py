"""Lambda event source mappings, locally.

``EventRunner`` polls the table's DynamoDB stream and the SQS sync queue the way
Lambda's event source mappings do and calls the same Chalice handlers with events
of Lambda's exact shape:

* **Stream** (as deployed by ``infra/chalice-merge.yaml``): every shard, parents
  before children, from ``TRIM_HORIZON``, checkpointed by sequence number; batches
  of up to ``batch_size`` records; ``ReportBatchItemFailures`` (``itemIdentifier`` =
  ``SequenceNumber``: the batch is retried from that record); on a function error
  the batch is bisected (splitting does not use up retries); a batch still failing
  after ``max_retries`` retries is skipped and its ``DDBStreamBatchInfo`` is "sent
  to the on-failure destination": appended to ``failed_batches``, logged, and sent
  to ``on_failure_queue_url`` if one is given. While a batch is retried the shard
  does not advance, as on AWS.
* **SQS**: ``ReceiveMessage`` (up to 10, short wait, all attributes); the messages
  not listed in ``batchItemFailures`` are deleted. If the handler raises, or names
  an id that is not in the batch, nothing is deleted: the messages come back after
  the visibility timeout, and moto's server moves a message to the DLQ named by
  the queue's redrive policy on the first ``ReceiveMessage`` after its receive
  count reached ``maxReceiveCount`` (as SQS does).

Handlers are plain callables ``handler(event_dict, context)``. A Chalice
``@app.on_dynamodb_record`` / ``@app.on_sqs_message`` function is one: calling it
wraps the dict in Chalice's event class, runs the middleware and returns the
function's return value, as in Lambda.

Differences from AWS: one poller per source (shards are read one batch at a time
in turn, SQS batches one at a time), no batching window, no maximum record age.

Command line (settings from the same environment variables as the app, see
``devstack/env.py``; handlers from the module ``app``)::

    python -m devstack.event_runner [--batch-size 100] [--sqs-batch-size N] [--max-retries 10]

runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime as dt
import importlib
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "EventRunner",
    "FailedStreamBatch",
    "LambdaContext",
    "MissingHandlersError",
    "load_app_handlers",
    "main",
]

logger = logging.getLogger("devstack.event_runner")

Handler = Callable[[dict[str, Any], Any], Any]

STREAM_HANDLER_NAME = "handle_table_changes"
SQS_HANDLER_NAME = "sync_invoices"
DEFAULT_APP_NAME = "usage-invoicing"
DEFAULT_ACCOUNT_ID = "123456789012"
EXIT_NO_HANDLERS = 3
# Lambda passes these system attributes in an SQS event (the FIFO / tracing ones when present).
_SQS_EVENT_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "DeadLetterQueueSourceArn",
    "AWSTraceHeader",
)


class MissingHandlersError(RuntimeError):
    """The application module defines neither event handler (yet)."""


class LambdaContext:
    """The attributes and method of the Python Lambda runtime's context object."""

    def __init__(
        self,
        function_name: str,
        *,
        timeout_s: float = 30.0,
        memory_limit_in_mb: int = 512,
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.memory_limit_in_mb = int(memory_limit_in_mb)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"{dt.date.today():%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def __repr__(self) -> str:
        return f"LambdaContext({self.function_name!r}, request_id={self.aws_request_id!r})"


@dataclass
class FailedStreamBatch:
    """A stream batch that exhausted its retries ("sent to the on-failure destination")."""

    shard_id: str
    records: list[dict[str, Any]]
    destination_message: dict[str, Any]
    error: str | None

    @property
    def sequence_numbers(self) -> list[str]:
        return [r["dynamodb"]["SequenceNumber"] for r in self.records]


@dataclass
class _Shard:
    shard_id: str
    parent_id: str | None
    iterator: str | None = None
    checkpoint: str | None = None  # last sequence number fully handled
    finished: bool = False


@dataclass
class _Outcome:
    ok: bool
    retry_from: int = 0  # index of the first record to retry
    error: str | None = None  # set when the function raised (or answered nonsense)
    function_error: bool = False


@dataclass
class _SourceState:
    """Idle bookkeeping of one poller, for run_until_idle in background mode."""

    last_idle_pass_start: float = -1.0
    passes: int = 0


def _credentials() -> dict[str, str | None]:
    key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return {
            "aws_access_key_id": key,
            "aws_secret_access_key": secret,
            "aws_session_token": os.environ.get("AWS_SESSION_TOKEN"),
        }
    return {"aws_access_key_id": "test", "aws_secret_access_key": "test", "aws_session_token": None}


def _client(service: str, endpoint: str | None, region: str, read_timeout: float = 30.0) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        config=Config(
            connect_timeout=2,
            read_timeout=read_timeout,
            retries={"mode": "standard", "max_attempts": 3},
        ),
        **_credentials(),
    )


def _b64(value: bytes | bytearray | str) -> str:
    if isinstance(value, str):
        return value
    return base64.b64encode(bytes(value)).decode("ascii")


def attribute_value_json(value: Mapping[str, Any]) -> dict[str, Any]:
    """A boto3 AttributeValue back in DynamoDB JSON as Lambda delivers it (binary as base64)."""
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": _b64(inner)}
    if kind == "BS":
        return {"BS": [_b64(item) for item in inner]}
    if kind == "M":
        return {"M": {name: attribute_value_json(item) for name, item in inner.items()}}
    if kind == "L":
        return {"L": [attribute_value_json(item) for item in inner]}
    if kind in ("SS", "NS"):
        return {kind: list(inner)}
    return {kind: inner}


def _item_json(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: attribute_value_json(value) for name, value in item.items()}


def _epoch_seconds(value: Any) -> int | float:
    if isinstance(value, dt.datetime):
        seconds = value.timestamp()
    else:
        seconds = float(value)
    return int(seconds) if float(seconds).is_integer() else seconds


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
        self.batch_size = batch_size
        self.sqs_batch_size = sqs_batch_size
        self.max_retries = max_retries
        self.bisect_on_error = bisect_on_error
        self.starting_position = starting_position
        self.sqs_wait_seconds = sqs_wait_seconds
        self.idle_backoff_s = idle_backoff_s
        self.on_failure_queue_url = on_failure_queue_url
        self.stream_function_name = stream_function_name
        self.sqs_function_name = sqs_function_name
        self.stream_timeout_s = stream_timeout_s
        self.sqs_timeout_s = sqs_timeout_s
        self.memory_limit_in_mb = memory_limit_in_mb

        self._streams_endpoint = dynamodb_streams_endpoint
        self._sqs_endpoint = sqs_endpoint
        self._streams_client: Any = None
        self._sqs_client: Any = None
        self._shards: dict[str, _Shard] = {}

        self.failed_batches: list[FailedStreamBatch] = []
        self.stats: collections.Counter[str] = collections.Counter()

        self._stream_lock = threading.Lock()
        self._queue_lock = threading.Lock()
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
        return self._poll_stream() + self._poll_queue(sqs_wait_seconds)

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
        poll: Callable[[], int] = self._poll_stream if source == "stream" else self._poll_queue
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

    # -- DynamoDB stream ------------------------------------------------------------
    def _poll_stream(self) -> int:
        if self.stream_handler is None or not self.stream_arn:
            return 0
        with self._stream_lock:
            self._refresh_shards()
            handled = 0
            for shard in list(self._shards.values()):
                if shard.finished or not self._parent_done(shard):
                    continue
                handled += self._poll_shard(shard)
            return handled

    def _refresh_shards(self) -> None:
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = self.streams.describe_stream(**kwargs)["StreamDescription"]
            for shard in description.get("Shards", []):
                shard_id = shard["ShardId"]
                if shard_id not in self._shards:
                    self._shards[shard_id] = _Shard(shard_id, shard.get("ParentShardId"))
            last = description.get("LastEvaluatedShardId")
            if not last:
                return
            kwargs["ExclusiveStartShardId"] = last

    def _parent_done(self, shard: _Shard) -> bool:
        parent = self._shards.get(shard.parent_id) if shard.parent_id else None
        # A parent no longer described has been trimmed: nothing left to read there.
        return parent is None or parent.finished

    def _iterator(self, shard: _Shard) -> str:
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard.shard_id}
        if shard.checkpoint is not None:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=shard.checkpoint)
        else:
            kwargs["ShardIteratorType"] = self.starting_position
        return str(self.streams.get_shard_iterator(**kwargs)["ShardIterator"])

    def _poll_shard(self, shard: _Shard) -> int:
        from botocore.exceptions import ClientError

        if shard.iterator is None:
            shard.iterator = self._iterator(shard)
        try:
            response = self.streams.get_records(ShardIterator=shard.iterator, Limit=self.batch_size)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("ExpiredIteratorException", "TrimmedDataAccessException"):
                logger.info("shard %s: %s, re-reading from the checkpoint", shard.shard_id, code)
                shard.iterator = None
                return 0
            if code == "ResourceNotFoundException":
                shard.finished = True
                return 0
            raise
        raw = response.get("Records", [])
        next_iterator = response.get("NextShardIterator")
        if raw:
            try:
                records = [self._stream_record(record) for record in raw]
                self._deliver_stream_batch(shard.shard_id, records)
            except BaseException:
                shard.iterator = None  # re-read from the checkpoint next time
                raise
            shard.checkpoint = records[-1]["dynamodb"]["SequenceNumber"]
            self.stats["stream_records"] += len(records)
        shard.iterator = next_iterator
        if shard.iterator is None:
            shard.finished = True  # closed shard read to its end
        return len(raw)

    def _stream_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        change = record["dynamodb"]
        body: dict[str, Any] = {}
        if "ApproximateCreationDateTime" in change:
            body["ApproximateCreationDateTime"] = _epoch_seconds(change["ApproximateCreationDateTime"])
        for key in ("Keys", "NewImage", "OldImage"):
            if key in change:
                body[key] = _item_json(change[key])
        body["SequenceNumber"] = change["SequenceNumber"]
        body["SizeBytes"] = change["SizeBytes"]
        body["StreamViewType"] = change["StreamViewType"]
        event: dict[str, Any] = {
            "eventID": record["eventID"],
            "eventName": record["eventName"],
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            # DynamoDB Local reports "ddblocal"; Lambda reports the function's region.
            "awsRegion": self.region,
            "dynamodb": body,
            "eventSourceARN": self.stream_arn,
        }
        if "userIdentity" in record:  # TTL deletions
            event["userIdentity"] = dict(record["userIdentity"])
        return event

    def _deliver_stream_batch(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        pending: collections.deque[tuple[list[dict[str, Any]], int]] = collections.deque([(records, 0)])
        while pending:
            chunk, retries = pending.popleft()
            outcome = self._invoke_stream(chunk)
            if outcome.ok:
                continue
            rest = chunk[outcome.retry_from:]
            if outcome.function_error and self.bisect_on_error and len(rest) > 1:
                middle = len(rest) // 2
                self.stats["stream_bisections"] += 1
                pending.appendleft((rest[middle:], retries))
                pending.appendleft((rest[:middle], retries))
                continue
            if 0 <= self.max_retries <= retries:
                self._discard(shard_id, rest, outcome, retries + 1)
                continue
            self.stats["stream_retries"] += 1
            pending.appendleft((rest, retries + 1))

    def _invoke_stream(self, records: list[dict[str, Any]]) -> _Outcome:
        assert self.stream_handler is not None
        context = self._context(self.stream_function_name, self.stream_timeout_s)
        self.stats["stream_invocations"] += 1
        try:
            result = self.stream_handler({"Records": records}, context)
        except Exception as exc:
            logger.exception("%s failed on %d record(s) from %s", self.stream_function_name, len(records),
                             records[0]["dynamodb"]["SequenceNumber"])
            self.stats["stream_errors"] += 1
            return _Outcome(ok=False, error=f"{type(exc).__name__}: {exc}", function_error=True)
        sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
        failed = _batch_item_failures(result, sequence_numbers)
        if failed is None:
            logger.error("%s returned an invalid batchItemFailures response: %r", self.stream_function_name, result)
            self.stats["stream_errors"] += 1
            return _Outcome(ok=False, error="invalid batchItemFailures response", function_error=True)
        if not failed:
            return _Outcome(ok=True)
        first = min(sequence_numbers.index(s) for s in failed)
        self.stats["stream_partial_failures"] += 1
        logger.warning("%s reported %d failed record(s); retrying from %s", self.stream_function_name,
                       len(failed), sequence_numbers[first])
        return _Outcome(ok=False, retry_from=first, error="batchItemFailures")

    def _discard(self, shard_id: str, records: list[dict[str, Any]], outcome: _Outcome, invocations: int) -> None:
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]

        def arrival(change: Mapping[str, Any]) -> str | None:
            seconds = change.get("ApproximateCreationDateTime")
            if seconds is None:
                return None
            return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

        response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if outcome.function_error:
            response_context["functionError"] = "Unhandled"
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self._context(self.stream_function_name, 0).invoked_function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": invocations,
            },
            "responseContext": response_context,
            "version": "1.0",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": arrival(first),
                "approximateArrivalOfLastRecord": arrival(last),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }
        self.failed_batches.append(FailedStreamBatch(shard_id, list(records), message, outcome.error))
        self.stats["stream_discarded_records"] += len(records)
        logger.error("stream batch %s..%s (%d record(s)) exhausted its retries (%s): sent to the on-failure "
                     "destination", first["SequenceNumber"], last["SequenceNumber"], len(records), outcome.error)
        if self.on_failure_queue_url:
            try:
                self.sqs.send_message(QueueUrl=self.on_failure_queue_url, MessageBody=json.dumps(message))
            except Exception:
                logger.exception("could not send the failed batch to %s", self.on_failure_queue_url)

    # -- SQS ----------------------------------------------------------------------------
    def _poll_queue(self, wait_seconds: int | None = None) -> int:
        if self.sqs_handler is None or not self.queue_url:
            return 0
        wait = self.sqs_wait_seconds if wait_seconds is None else wait_seconds
        with self._queue_lock:
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.sqs_batch_size,
                # Always explicit: the queue's own default wait is 20 s.
                WaitTimeSeconds=int(wait),
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                return 0
            records = [self._sqs_record(message) for message in messages]
            self._deliver_sqs_batch(records)
            self.stats["sqs_messages"] += len(records)
            return len(records)

    def _sqs_record(self, message: Mapping[str, Any]) -> dict[str, Any]:
        system = message.get("Attributes", {})
        attributes = {name: str(system[name]) for name in _SQS_EVENT_ATTRIBUTES if name in system}
        message_attributes: dict[str, Any] = {}
        for name, value in message.get("MessageAttributes", {}).items():
            converted: dict[str, Any] = {}
            if "StringValue" in value:
                converted["stringValue"] = value["StringValue"]
            if "BinaryValue" in value:
                converted["binaryValue"] = _b64(value["BinaryValue"])
            converted["stringListValues"] = list(value.get("StringListValues", []))
            converted["binaryListValues"] = [_b64(v) for v in value.get("BinaryListValues", [])]
            converted["dataType"] = value["DataType"]
            message_attributes[name] = converted
        record: dict[str, Any] = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": message_attributes,
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        record.update({
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        })
        return record

    def _deliver_sqs_batch(self, records: list[dict[str, Any]]) -> None:
        assert self.sqs_handler is not None
        context = self._context(self.sqs_function_name, self.sqs_timeout_s)
        self.stats["sqs_invocations"] += 1
        ids = [r["messageId"] for r in records]
        try:
            result = self.sqs_handler({"Records": records}, context)
        except Exception:
            logger.exception("%s failed on %d message(s); they return after the visibility timeout",
                             self.sqs_function_name, len(records))
            self.stats["sqs_errors"] += 1
            return
        failed = _batch_item_failures(result, ids)
        if failed is None:
            logger.error("%s returned an invalid batchItemFailures response, the whole batch failed: %r",
                         self.sqs_function_name, result)
            self.stats["sqs_errors"] += 1
            return
        if failed:
            self.stats["sqs_item_failures"] += len(failed)
            logger.warning("%s reported %d failed message(s): %s", self.sqs_function_name, len(failed),
                           sorted(failed))
        done = [r for r in records if r["messageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start:start + 10]
            response = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)],
            )
            for failure in response.get("Failed", []):
                logger.warning("could not delete message %s: %s", chunk[int(failure["Id"])]["messageId"],
                               failure.get("Message", failure.get("Code")))
        self.stats["sqs_deleted"] += len(done)

    # -- shared -------------------------------------------------------------------------
    def _context(self, function_name: str, timeout_s: float) -> LambdaContext:
        return LambdaContext(function_name, timeout_s=timeout_s, memory_limit_in_mb=self.memory_limit_in_mb,
                             region=self.region)


def _batch_item_failures(result: Any, identifiers: Sequence[str]) -> set[str] | None:
    """Failed identifiers from a handler's response; None if Lambda would fail the whole batch."""
    if not isinstance(result, Mapping):
        return set()
    items = result.get("batchItemFailures")
    if not items:
        return set()
    if not isinstance(items, list):
        return None
    known = set(identifiers)
    failed: set[str] = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(identifier, str) or identifier not in known:
            return None
        failed.add(identifier)
    return failed


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


# -- command line --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.event_runner",
        description="Deliver the table stream and the sync queue to the app's Lambda handlers, locally.",
    )
    parser.add_argument("--app-module", default="app")
    parser.add_argument("--batch-size", type=int, help="stream batch size (default: the decorator's, else 100)")
    parser.add_argument("--sqs-batch-size", type=int, help="SQS batch size (default: the decorator's, else 10)")
    parser.add_argument("--max-retries", type=int, default=10, help="stream batch retries, -1 = forever")
    parser.add_argument("--no-bisect", action="store_true", help="do not bisect a failing stream batch")
    parser.add_argument("--starting-position", default="TRIM_HORIZON", choices=["TRIM_HORIZON", "LATEST"])
    parser.add_argument("--sqs-wait-seconds", type=int, default=1)
    parser.add_argument("--on-failure-queue-url", help="send discarded stream batches' info to this queue")
    parser.add_argument("--ready-file", help="create this file once the first pass is done")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stdout,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    project_root = str(Path(__file__).resolve().parent.parent)
    if project_root not in sys.path:
        sys.path.insert(0, project_root)
    try:
        handlers = load_app_handlers(args.app_module)
    except MissingHandlersError as exc:
        print(f"event runner: {exc}; nothing to run", file=sys.stderr, flush=True)
        return EXIT_NO_HANDLERS
    for name, handler in ((STREAM_HANDLER_NAME, handlers.stream_handler), (SQS_HANDLER_NAME, handlers.sqs_handler)):
        if handler is None:
            logger.warning("%s.%s is not defined: that event source is not polled", args.app_module, name)

    options = handlers.runner_options()
    if args.batch_size:
        options["batch_size"] = args.batch_size
    if args.sqs_batch_size:
        options["sqs_batch_size"] = args.sqs_batch_size
    runner = EventRunner.from_environment(
        handlers.stream_handler,
        handlers.sqs_handler,
        max_retries=args.max_retries,
        bisect_on_error=not args.no_bisect,
        starting_position=args.starting_position,
        sqs_wait_seconds=args.sqs_wait_seconds,
        on_failure_queue_url=args.on_failure_queue_url,
        **options,
    )

    from devstack.runner_group import with_deliveries

    runner = with_deliveries(runner, args.app_module, sqs_wait_seconds=args.sqs_wait_seconds)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runner.start()
    logger.info("event runner started: stream %s, queue %s", runner.stream_arn if handlers.stream_handler else "-",
                runner.queue_url if handlers.sqs_handler else "-")
    try:
        if args.ready_file:
            try:
                runner.run_until_idle(timeout_s=60.0)
            except TimeoutError:
                pass  # busy is fine: it is polling
            Path(args.ready_file).touch()
        while not stopping.wait(0.5):
            if not runner.running:
                logger.error("event runner threads ended unexpectedly")
                return 1
    finally:
        runner.stop()
        logger.info("event runner stopped: %s", dict(runner.stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
