"""What a block of a test wrote to a table, read from the table's stream.

Comparing the table before and after a block costs two scans of all of it. The stream lists exactly the
items the block changed, in a few requests whatever the table holds: each put, update or delete that
changed an item, with its keys and both images (a write that leaves an item as it was makes no record, as
in DynamoDB). DynamoDB Local has a write on the stream by the time the write returns, so reading right
after the block misses nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .tables import app_client


@dataclass(frozen=True)
class Change:
    event: str  # INSERT, MODIFY or REMOVE
    key: tuple[str, str]  # (pk, sk)
    old: dict[str, Any] | None  # the item before, as DynamoDB's attribute values
    new: dict[str, Any] | None  # and after


@lru_cache(maxsize=64)
def _stream_arn(table_name: str) -> str:
    return str(app_client("dynamodb").describe_table(TableName=table_name)["Table"]["LatestStreamArn"])


class _Stream:
    def __init__(self, table_name: str | None) -> None:
        from chalicelib.config import settings

        self.streams = app_client("dynamodbstreams")
        self.arn = _stream_arn(table_name or settings().table_name)

    def shards(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamArn": self.arn}
        while True:
            description = self.streams.describe_stream(**kwargs)["StreamDescription"]
            shards += description.get("Shards", [])
            if not description.get("LastEvaluatedShardId"):
                return shards
            kwargs["ExclusiveStartShardId"] = description["LastEvaluatedShardId"]

    def iterator(self, shard_id: str, position: str) -> str | None:
        answer = self.streams.get_shard_iterator(StreamArn=self.arn, ShardId=shard_id, ShardIteratorType=position)
        return answer.get("ShardIterator")

    def read(self, iterator: str | None) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        while iterator:
            page = self.streams.get_records(ShardIterator=iterator)
            if not page["Records"]:
                return records
            records += page["Records"]
            iterator = page.get("NextShardIterator")
        return records


def _change(record: dict[str, Any]) -> Change:
    image = record["dynamodb"]
    keys = image["Keys"]
    return Change(record["eventName"], (keys["pk"]["S"], keys["sk"]["S"]), image.get("OldImage"),
                  image.get("NewImage"))


@contextmanager
def changes_to(table_name: str | None = None) -> Iterator[list[Change]]:
    """The items changed in `table_name` (the app's table by default) while the block ran, in order; the list
    is filled when the block ends."""
    stream = _Stream(table_name)
    known = stream.shards()
    # Open shards are read from here on; shards that appear during the block, from their start.
    marks = {shard["ShardId"]: stream.iterator(shard["ShardId"], "LATEST") for shard in known
             if "EndingSequenceNumber" not in shard["SequenceNumberRange"]}
    seen = {shard["ShardId"] for shard in known}
    changed: list[Change] = []
    yield changed
    records = [record for iterator in marks.values() for record in stream.read(iterator)]
    for shard in stream.shards():
        if shard["ShardId"] not in seen:
            records += stream.read(stream.iterator(shard["ShardId"], "TRIM_HORIZON"))
    changed += [_change(record) for record in sorted(records, key=lambda r: int(r["dynamodb"]["SequenceNumber"]))]
