"""Helpers for the local stack's own tests."""

from __future__ import annotations

import uuid

import boto3

from devstack.resources import LocalResources, create_local_resources

CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "test", "aws_secret_access_key": "test"}


class Aws:
    """boto3 clients and a fresh table/queue set on the session's DynamoDB Local and moto servers."""

    def __init__(self, dynamodb_endpoint: str, sqs_endpoint: str) -> None:
        self.dynamodb_endpoint = dynamodb_endpoint
        self.sqs_endpoint = sqs_endpoint
        self.dynamodb = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, **CREDENTIALS)
        self.sqs = boto3.client("sqs", endpoint_url=sqs_endpoint, **CREDENTIALS)

    def fresh_resources(self, visibility_seconds: int = 1) -> LocalResources:
        name = f"runner-{uuid.uuid4().hex[:10]}"
        return create_local_resources(self.dynamodb_endpoint, self.sqs_endpoint, name, name,
                                      sync_queue_visibility_seconds=visibility_seconds, receive_wait_seconds=0)

    def queue_counts(self, queue_url: str) -> tuple[int, int]:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])
