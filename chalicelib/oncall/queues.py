"""The SQS side of the on-call tool: one client, queue depths, queue ARNs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import boto3

from ..config import Settings

DEPTH_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


@dataclass(frozen=True)
class QueueDepth:
    """SQS's approximate counts: waiting, received but not yet deleted, and delayed."""

    visible: int
    in_flight: int
    delayed: int


def sqs_client(settings: Settings) -> Any:
    # boto3 picks up AWS_ENDPOINT_URL_SQS by itself, so the local stack needs nothing here.
    return boto3.client("sqs", region_name=settings.region)


def endpoint_overridden() -> bool:
    """True on the local stack: an emulator, not AWS, answers SQS calls (moto lacks message move tasks)."""
    return bool(os.environ.get("AWS_ENDPOINT_URL_SQS") or os.environ.get("AWS_ENDPOINT_URL"))


def depth(sqs: Any, queue_url: str) -> QueueDepth:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(DEPTH_ATTRIBUTES))["Attributes"]
    visible, in_flight, delayed = (int(attributes.get(name, "0")) for name in DEPTH_ATTRIBUTES)
    return QueueDepth(visible=visible, in_flight=in_flight, delayed=delayed)


def arn(sqs: Any, queue_url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
