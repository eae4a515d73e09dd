"""Create the billing table and the sync queues of ``infra/resources.yaml`` on local endpoints.

The definitions come from the template (``devstack/template.py``), so the local stack cannot drift from
what is deployed:

* ``BillingTable`` -> ``create_table`` (key schema, attribute definitions,
  GSIs, billing mode, stream specification) + ``update_time_to_live``.
  Point-in-time recovery and SSE have no local meaning and are not applied.
* every ``AWS::SQS::Queue`` -> ``create_queue`` + ``set_queue_attributes``
  (visibility, wait time, retention, SSE flag, redrive policy pointing at the
  local DLQ, redrive-allow policy naming the local source queue).

Names: the template names queues ``${AppName}-${Stage}<suffix>``; locally they
are ``<queue_prefix><suffix>`` (e.g. ``<queue_prefix>-sync`` and
``<queue_prefix>-sync-dlq``). The table gets ``table_name`` as given.

Everything is idempotent: existing tables and queues are reused (queue
attributes are re-applied, so a changed visibility override takes effect).

Command line::

    python -m devstack.resources --dynamodb-endpoint http://127.0.0.1:8000 \\
        --sqs-endpoint http://127.0.0.1:9324 --table-name billing-local \\
        --queue-prefix usage-invoicing-local

prints the created resources as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from devstack import local_aws
from devstack.template import (
    QUEUE_CREATE_ONLY,
    LocalResourceError,
    attribute_value,
    load_template,
    queue_attributes,
    queue_definitions,
    table_definition,
    template_parameters,
)

__all__ = ["LocalResourceError", "LocalResources", "create_local_resources", "main"]

SYNC_QUEUE_LOGICAL_ID = "SyncQueue"
SYNC_DLQ_LOGICAL_ID = "SyncDLQ"
DELIVERY_QUEUE_LOGICAL_ID = "DeliveryQueue"
DELIVERY_DLQ_LOGICAL_ID = "DeliveryDLQ"


@dataclass(frozen=True)
class LocalResources:
    table_name: str
    stream_arn: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    delivery_queue_url: str = ""
    delivery_queue_arn: str = ""
    delivery_dlq_url: str = ""


def _ensure_table(client: Any, definition: Mapping[str, Any], timeout: float) -> str:
    create = definition["create_table"]
    name = create["TableName"]
    try:
        table = client.describe_table(TableName=name)["Table"]
    except client.exceptions.ResourceNotFoundException:
        try:
            table = client.create_table(**create)["TableDescription"]
        except client.exceptions.ResourceInUseException:  # created concurrently
            table = client.describe_table(TableName=name)["Table"]

    deadline = time.monotonic() + timeout
    while table.get("TableStatus") != "ACTIVE":
        if time.monotonic() >= deadline:
            raise LocalResourceError(f"table {name} not ACTIVE after {timeout:.0f}s")
        time.sleep(0.1)
        table = client.describe_table(TableName=name)["Table"]

    if table["KeySchema"] != create["KeySchema"]:
        raise LocalResourceError(
            f"existing table {name} has key schema {table['KeySchema']}, "
            f"the template wants {create['KeySchema']}; delete it or use another name"
        )
    wanted_stream = create.get("StreamSpecification")
    if wanted_stream and table.get("StreamSpecification", {}).get("StreamViewType") != wanted_stream["StreamViewType"]:
        raise LocalResourceError(
            f"existing table {name} has no {wanted_stream['StreamViewType']} stream; delete it or use another name"
        )

    ttl = definition.get("time_to_live")
    if ttl:
        current = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        enabled = current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
        if not (enabled and current.get("AttributeName") == ttl["AttributeName"]):
            client.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    return table.get("LatestStreamArn", "")


def _ensure_queue(client: Any, name: str, create_attributes: Mapping[str, str]) -> str:
    try:
        return client.get_queue_url(QueueName=name)["QueueUrl"]
    except client.exceptions.QueueDoesNotExist:
        return client.create_queue(QueueName=name, Attributes=dict(create_attributes))["QueueUrl"]


def create_local_resources(
    dynamodb_endpoint: str,
    sqs_endpoint: str,
    table_name: str,
    queue_prefix: str,
    region: str = local_aws.DEFAULT_REGION,
    *,
    sync_queue_visibility_seconds: int | None = None,
    receive_wait_seconds: int | None = None,
    parameters: Mapping[str, Any] | None = None,
    template_path: os.PathLike[str] | str | None = None,
    timeout: float = 30.0,
) -> LocalResources:
    """Create (or reuse) the table and queues of ``infra/resources.yaml`` locally.

    ``sync_queue_visibility_seconds`` / ``receive_wait_seconds`` override the
    sync queue's VisibilityTimeout / ReceiveMessageWaitTimeSeconds (tests want
    short ones); ``parameters`` overrides template parameters (for example
    ``{"WorkerTimeoutSeconds": 30}``).
    """
    template = load_template(template_path)
    template_parameters(template, parameters)  # rejects unknown parameter names early

    retries = {"mode": "standard", "max_attempts": 5}
    ddb = local_aws.client("dynamodb", dynamodb_endpoint, region, retries=retries)
    stream_arn = _ensure_table(ddb, table_definition(template, table_name, parameters), timeout)

    sqs = local_aws.client("sqs", sqs_endpoint, region, retries=retries)
    definitions = queue_definitions(template)
    for required in (SYNC_QUEUE_LOGICAL_ID, SYNC_DLQ_LOGICAL_ID):
        if required not in definitions:
            raise LocalResourceError(f"template has no queue {required!r}")

    # Phase 1: every queue exists, so ARNs are known for cross references.
    attributes: dict[str, dict[str, str]] = {}
    for logical_id, definition in definitions.items():
        name = queue_prefix + definition["name_suffix"]
        create_only = {
            key: attribute_value(definition["properties"][key])
            for key in QUEUE_CREATE_ONLY
            if key in definition["properties"]
        }
        url = _ensure_queue(sqs, name, create_only)
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes[logical_id] = {"Arn": arn, "QueueName": name, "QueueUrl": url}

    overrides: dict[str, dict[str, Any]] = {SYNC_QUEUE_LOGICAL_ID: {}}
    if sync_queue_visibility_seconds is not None:
        overrides[SYNC_QUEUE_LOGICAL_ID]["VisibilityTimeout"] = int(sync_queue_visibility_seconds)
    if receive_wait_seconds is not None:
        overrides[SYNC_QUEUE_LOGICAL_ID]["ReceiveMessageWaitTimeSeconds"] = int(receive_wait_seconds)

    # Phase 2: apply the template's attributes (DLQ before its source queue).
    for logical_id, values in queue_attributes(
        template, attributes, queue_prefix, region, parameters=parameters, overrides=overrides
    ).items():
        if values:
            sqs.set_queue_attributes(QueueUrl=attributes[logical_id]["QueueUrl"], Attributes=values)

    return LocalResources(
        table_name=table_name,
        stream_arn=stream_arn,
        queue_url=attributes[SYNC_QUEUE_LOGICAL_ID]["QueueUrl"],
        queue_arn=attributes[SYNC_QUEUE_LOGICAL_ID]["Arn"],
        dlq_url=attributes[SYNC_DLQ_LOGICAL_ID]["QueueUrl"],
        dlq_arn=attributes[SYNC_DLQ_LOGICAL_ID]["Arn"],
        delivery_queue_url=attributes.get(DELIVERY_QUEUE_LOGICAL_ID, {}).get("QueueUrl", ""),
        delivery_queue_arn=attributes.get(DELIVERY_QUEUE_LOGICAL_ID, {}).get("Arn", ""),
        delivery_dlq_url=attributes.get(DELIVERY_DLQ_LOGICAL_ID, {}).get("QueueUrl", ""),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.resources",
        description="Create the billing table and sync queues of infra/resources.yaml locally.",
    )
    parser.add_argument("--dynamodb-endpoint", required=True)
    parser.add_argument("--sqs-endpoint", required=True)
    parser.add_argument("--table-name", required=True)
    parser.add_argument("--queue-prefix", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--sync-queue-visibility-seconds", type=int)
    parser.add_argument("--receive-wait-seconds", type=int)
    args = parser.parse_args(argv)
    resources = create_local_resources(
        args.dynamodb_endpoint,
        args.sqs_endpoint,
        args.table_name,
        args.queue_prefix,
        args.region,
        sync_queue_visibility_seconds=args.sync_queue_visibility_seconds,
        receive_wait_seconds=args.receive_wait_seconds,
    )
    print(json.dumps(asdict(resources), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
