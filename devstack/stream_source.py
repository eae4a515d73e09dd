"""A DynamoDB stream as Lambda's event source mapping reads it (as deployed by `infra/chalice-merge.yaml`).

Every shard, parents before children, checkpointed by sequence number; batches of up to `batch_size`
records; `ReportBatchItemFailures` (`itemIdentifier` = `SequenceNumber`: the batch is retried from that
record); on a function error the batch is bisected (splitting does not use up retries); a batch still
failing after `max_retries` retries is skipped and its `DDBStreamBatchInfo` is "sent to the on-failure
destination": kept in `failed_batches`, logged, and passed to `on_failure`. While a batch is retried the
shard does not advance, as on AWS.

`LATEST` is read as "after what the shard holds when first read": DynamoDB Local answers a LATEST iterator
taken on a shard that holds no records yet with TrimmedDataAccessException once records arrive, and taking
LATEST again would skip them. So the shard is read to its end once, without delivering, and read after the
last sequence number seen (or from its start, if it held nothing) from then on.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devstack.lambda_events import Function, batch_item_failures, failure_destination_message, stream_record

logger = logging.getLogger("devstack.event_runner")


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
    positioned: bool = False  # LATEST only: the shard was read to its end once
    finished: bool = False


@dataclass
class _Outcome:
    ok: bool
    retry_from: int = 0  # index of the first record to retry
    error: str | None = None  # set when the function raised (or answered nonsense)
    function_error: bool = False


@dataclass
class StreamOptions:
    batch_size: int = 100
    max_retries: int = 10  # -1 retries a failing batch forever (AWS's default)
    bisect_on_error: bool = True
    starting_position: str = "TRIM_HORIZON"


@dataclass
class StreamSource:
    """Polls one stream and invokes `handler` with Lambda-shaped events; `poll()` reads one batch per shard."""

    function: Function
    stream_arn: str
    streams: Callable[[], Any]  # the client, built when first needed
    options: StreamOptions
    on_failure: Callable[[dict[str, Any]], None]
    failed_batches: list[FailedStreamBatch] = field(default_factory=list)
    _shards: dict[str, _Shard] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def poll(self) -> int:
        """One batch from every readable shard; returns the number of records handled."""
        with self._lock:
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
            description = self.streams().describe_stream(**kwargs)["StreamDescription"]
            for shard in description.get("Shards", []):
                if shard["ShardId"] not in self._shards:
                    self._shards[shard["ShardId"]] = _Shard(shard["ShardId"], shard.get("ParentShardId"))
            last = description.get("LastEvaluatedShardId")
            if not last:
                return
            kwargs["ExclusiveStartShardId"] = last

    def _parent_done(self, shard: _Shard) -> bool:
        parent = self._shards.get(shard.parent_id) if shard.parent_id else None
        # A parent no longer described has been trimmed: nothing left to read there.
        return parent is None or parent.finished

    def _iterator(self, shard: _Shard) -> str | None:
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard.shard_id}
        if self.options.starting_position == "LATEST" and not shard.positioned:
            self._skip_to_end(shard)
            if shard.finished:
                return None
        if shard.checkpoint is not None:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=shard.checkpoint)
        else:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        return str(self.streams().get_shard_iterator(**kwargs)["ShardIterator"])

    def _skip_to_end(self, shard: _Shard) -> None:
        iterator: str | None = self.streams().get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=shard.shard_id, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator is not None:
            response = self.streams().get_records(ShardIterator=iterator, Limit=1000)
            records = response.get("Records", [])
            if records:
                shard.checkpoint = records[-1]["dynamodb"]["SequenceNumber"]
            iterator = response.get("NextShardIterator")
            if not records:
                break
        shard.positioned = True
        shard.finished = iterator is None  # a closed shard holds nothing after LATEST

    def _poll_shard(self, shard: _Shard) -> int:
        from botocore.exceptions import ClientError

        if shard.iterator is None:
            shard.iterator = self._iterator(shard)
            if shard.iterator is None:
                return 0
        try:
            response = self.streams().get_records(ShardIterator=shard.iterator, Limit=self.options.batch_size)
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
                records = [stream_record(record, self.stream_arn, self.function.region) for record in raw]
                self._deliver(shard.shard_id, records)
            except BaseException:
                shard.iterator = None  # re-read from the checkpoint next time
                raise
            shard.checkpoint = records[-1]["dynamodb"]["SequenceNumber"]
            self.function.stats["stream_records"] += len(records)
        shard.iterator = next_iterator
        if shard.iterator is None:
            shard.finished = True  # closed shard read to its end
        return len(raw)

    def _deliver(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        pending: collections.deque[tuple[list[dict[str, Any]], int]] = collections.deque([(records, 0)])
        while pending:
            chunk, retries = pending.popleft()
            outcome = self._invoke(chunk)
            if outcome.ok:
                continue
            rest = chunk[outcome.retry_from:]
            if outcome.function_error and self.options.bisect_on_error and len(rest) > 1:
                middle = len(rest) // 2
                self.function.stats["stream_bisections"] += 1
                pending.appendleft((rest[middle:], retries))
                pending.appendleft((rest[:middle], retries))
                continue
            if 0 <= self.options.max_retries <= retries:
                self._discard(shard_id, rest, outcome, retries + 1)
                continue
            self.function.stats["stream_retries"] += 1
            pending.appendleft((rest, retries + 1))

    def _invoke(self, records: list[dict[str, Any]]) -> _Outcome:
        context = self.function.context()
        self.function.stats["stream_invocations"] += 1
        try:
            result = self.function.handler({"Records": records}, context)
        except Exception as exc:
            logger.exception("%s failed on %d record(s) from %s", context.function_name, len(records),
                             records[0]["dynamodb"]["SequenceNumber"])
            self.function.stats["stream_errors"] += 1
            return _Outcome(ok=False, error=f"{type(exc).__name__}: {exc}", function_error=True)
        sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
        failed = batch_item_failures(result, sequence_numbers)
        if failed is None:
            logger.error("%s returned an invalid batchItemFailures response: %r", context.function_name, result)
            self.function.stats["stream_errors"] += 1
            return _Outcome(ok=False, error="invalid batchItemFailures response", function_error=True)
        if not failed:
            return _Outcome(ok=True)
        first = min(sequence_numbers.index(s) for s in failed)
        self.function.stats["stream_partial_failures"] += 1
        logger.warning("%s reported %d failed record(s); retrying from %s", context.function_name, len(failed),
                       sequence_numbers[first])
        return _Outcome(ok=False, retry_from=first, error="batchItemFailures")

    def _discard(self, shard_id: str, records: list[dict[str, Any]], outcome: _Outcome, invocations: int) -> None:
        message = failure_destination_message(
            shard_id, records, stream_arn=self.stream_arn, function_arn=self.function.context().invoked_function_arn,
            invocations=invocations, function_error=outcome.function_error)
        self.failed_batches.append(FailedStreamBatch(shard_id, list(records), message, outcome.error))
        self.function.stats["stream_discarded_records"] += len(records)
        logger.error("stream batch %s..%s (%d record(s)) exhausted its retries (%s): sent to the on-failure "
                     "destination", records[0]["dynamodb"]["SequenceNumber"],
                     records[-1]["dynamodb"]["SequenceNumber"], len(records), outcome.error)
        self.on_failure(message)
