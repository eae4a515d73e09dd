"""The shapes Lambda hands a function: the context object, a DynamoDB stream record, an SQS message, the
message a discarded stream batch sends to its on-failure destination, and how Lambda reads a
`batchItemFailures` answer."""

from __future__ import annotations

import base64
import collections
import datetime as dt
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Function",
    "LambdaContext",
    "attribute_value_json",
    "batch_item_failures",
    "failure_destination_message",
    "sqs_record",
    "stream_record",
]

DEFAULT_ACCOUNT_ID = "123456789012"
# Lambda passes these system attributes in an SQS event (the FIFO / tracing ones when present).
SQS_EVENT_ATTRIBUTES = (
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


class LambdaContext:
    """The attributes and method of the Python Lambda runtime's context object."""

    def __init__(self, function_name: str, *, timeout_s: float = 30.0, memory_limit_in_mb: int = 512,
                 region: str = "us-east-1", account_id: str = DEFAULT_ACCOUNT_ID) -> None:
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
class Function:
    """The function an event source mapping invokes: its handler, a fresh context per invocation, the region
    it runs in, and the counters the mapping keeps."""

    handler: Callable[[dict[str, Any], Any], Any]
    context: Callable[[], LambdaContext]
    region: str
    stats: collections.Counter[str]


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


def _epoch_seconds(value: Any) -> int | float:
    seconds = value.timestamp() if isinstance(value, dt.datetime) else float(value)
    return int(seconds) if float(seconds).is_integer() else seconds


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stream_record(record: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A `GetRecords` record as the record of a Lambda DynamoDB stream event."""
    change = record["dynamodb"]
    body: dict[str, Any] = {}
    if "ApproximateCreationDateTime" in change:
        body["ApproximateCreationDateTime"] = _epoch_seconds(change["ApproximateCreationDateTime"])
    for key in ("Keys", "NewImage", "OldImage"):
        if key in change:
            body[key] = {name: attribute_value_json(value) for name, value in change[key].items()}
    body["SequenceNumber"] = change["SequenceNumber"]
    body["SizeBytes"] = change["SizeBytes"]
    body["StreamViewType"] = change["StreamViewType"]
    event: dict[str, Any] = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        # DynamoDB Local reports "ddblocal"; Lambda reports the function's region.
        "awsRegion": region,
        "dynamodb": body,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in record:  # TTL deletions
        event["userIdentity"] = dict(record["userIdentity"])
    return event


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """A `ReceiveMessage` message as the record of a Lambda SQS event."""
    system = message.get("Attributes", {})
    attributes = {name: str(system[name]) for name in SQS_EVENT_ATTRIBUTES if name in system}
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
    record.update({"md5OfBody": message["MD5OfBody"], "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
                   "awsRegion": region})
    return record


def failure_destination_message(shard_id: str, records: Sequence[Mapping[str, Any]], *, stream_arn: str,
                                function_arn: str, invocations: int, function_error: bool) -> dict[str, Any]:
    """What Lambda sends to a stream mapping's on-failure destination for a batch out of retries."""
    first, last = records[0]["dynamodb"], records[-1]["dynamodb"]

    def arrival(change: Mapping[str, Any]) -> str | None:
        seconds = change.get("ApproximateCreationDateTime")
        return None if seconds is None else _iso(seconds)

    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if function_error:
        response_context["functionError"] = "Unhandled"
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": invocations,
        },
        "responseContext": response_context,
        "version": "1.0",
        "timestamp": _iso(time.time()),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first["SequenceNumber"],
            "endSequenceNumber": last["SequenceNumber"],
            "approximateArrivalOfFirstRecord": arrival(first),
            "approximateArrivalOfLastRecord": arrival(last),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


def batch_item_failures(result: Any, identifiers: Sequence[str]) -> set[str] | None:
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
