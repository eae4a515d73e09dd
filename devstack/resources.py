"""Create the billing table and the sync queues on local endpoints.

The definitions are read from ``infra/resources.yaml`` (the CloudFormation
template deployed to AWS), so the local stack cannot drift from it:

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
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEFAULT_TEMPLATE_PATH",
    "LocalResources",
    "LocalResourceError",
    "create_local_resources",
    "load_template",
    "queue_attributes",
    "queue_definitions",
    "table_definition",
    "template_parameters",
]

DEFAULT_TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "infra" / "resources.yaml"
TABLE_LOGICAL_ID = "BillingTable"
SYNC_QUEUE_LOGICAL_ID = "SyncQueue"
SYNC_DLQ_LOGICAL_ID = "SyncDLQ"
DELIVERY_QUEUE_LOGICAL_ID = "DeliveryQueue"
DELIVERY_DLQ_LOGICAL_ID = "DeliveryDLQ"
# Resource names in the template start with this; locally it becomes queue_prefix.
NAME_PREFIX = "${AppName}-${Stage}"

# CloudFormation queue properties that are SQS queue attributes of the same name.
_QUEUE_ATTRIBUTE_PROPERTIES = {
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
}
_QUEUE_CREATE_ONLY = {"FifoQueue"}
_QUEUE_IGNORED_PROPERTIES = {"QueueName", "Tags"}


class LocalResourceError(RuntimeError):
    """The template cannot be mapped, or a local resource does not match it."""


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

    def environment(self) -> dict[str, str]:
        """The application's environment variables for these resources."""
        return {
            "TABLE_NAME": self.table_name,
            "SYNC_QUEUE_URL": self.queue_url,
            "SYNC_DLQ_URL": self.dlq_url,
            "DELIVERY_QUEUE_URL": self.delivery_queue_url,
            "DELIVERY_DLQ_URL": self.delivery_dlq_url,
        }


# -- template loading ---------------------------------------------------------


class CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation short tags (!Ref, !Sub, ...).

    A subclass, so registering the tags does not change yaml.SafeLoader itself.
    """


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    name = tag_suffix
    key = name if name in ("Ref", "Condition") else f"Fn::{name}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if name == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {key: value}


CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: os.PathLike | None = None) -> dict[str, Any]:
    """Parse a CloudFormation YAML template (short intrinsic tags included)."""
    template_path = Path(path) if path is not None else DEFAULT_TEMPLATE_PATH
    with open(template_path, encoding="utf-8") as handle:
        template = yaml.load(handle, Loader=CloudFormationLoader)  # noqa: S506
    if not isinstance(template, dict) or "Resources" not in template:
        raise LocalResourceError(f"{template_path} is not a CloudFormation template")
    return template


def template_parameters(template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Parameter values: the template's defaults, then ``overrides``."""
    values: dict[str, str] = {}
    for name, spec in (template.get("Parameters") or {}).items():
        if "Default" in spec:
            values[name] = str(spec["Default"])
    for name, value in (overrides or {}).items():
        if name not in (template.get("Parameters") or {}):
            raise LocalResourceError(f"unknown template parameter {name!r}")
        values[name] = str(value)
    return values


class _Resolver:
    """Evaluates the few intrinsic functions the local mapping needs."""

    _SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str],
        *,
        region: str,
        account_id: str = "000000000000",
        name_prefix: str | None = None,
        attributes: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self._template = template
        self._values: dict[str, str] = dict(parameters)
        self._values.update(
            {
                "AWS::Region": region,
                "AWS::Partition": "aws",
                "AWS::AccountId": account_id,
                "AWS::URLSuffix": "amazonaws.com",
            }
        )
        self._name_prefix = name_prefix
        self._attributes = attributes or {}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._ref(argument)
            if key == "Fn::GetAtt":
                return self._get_att(*self._get_att_parts(argument))
            if key == "Fn::Sub":
                return self._sub(argument)
            if key == "Fn::FindInMap":
                return self._find_in_map(argument)
            if key == "Fn::Join":
                delimiter, items = argument
                return str(delimiter).join(str(self.resolve(item)) for item in items)
            if key.startswith("Fn::") or key == "Condition":
                raise LocalResourceError(f"cannot evaluate {key} locally")
        return {key: self.resolve(item) for key, item in value.items()}

    def _ref(self, name: str) -> str:
        if name in self._values:
            return self._values[name]
        if name in self._attributes and "Ref" in self._attributes[name]:
            return self._attributes[name]["Ref"]
        raise LocalResourceError(f"cannot resolve Ref {name!r} locally")

    @staticmethod
    def _get_att_parts(argument: Any) -> list[str]:
        if isinstance(argument, str):
            return argument.split(".", 1)
        return [str(part) for part in argument]

    def _get_att(self, logical_id: str, attribute: str) -> str:
        try:
            return self._attributes[logical_id][attribute]
        except KeyError:
            raise LocalResourceError(f"cannot resolve GetAtt {logical_id}.{attribute} locally") from None

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], argument[1]
            local = {name: str(self.resolve(value)) for name, value in variables.items()}
        else:
            text, local = argument, {}
        if self._name_prefix is not None:
            text = text.replace(NAME_PREFIX, self._name_prefix)

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                return local[name]
            if "." in name:
                return self._get_att(*name.split(".", 1))
            return self._ref(name)

        # ${!Literal} is CloudFormation's escape for a literal ${Literal}.
        return self._SUB_VARIABLE.sub(replace, text).replace("${!", "${")

    def _find_in_map(self, argument: Sequence[Any]) -> Any:
        map_name, top_key, second_key = (str(self.resolve(part)) for part in argument)
        try:
            return self._template["Mappings"][map_name][top_key][second_key]
        except KeyError:
            raise LocalResourceError(f"FindInMap [{map_name}, {top_key}, {second_key}] has no value") from None


# -- definitions ---------------------------------------------------------------


def _resource(template: Mapping[str, Any], logical_id: str, expected_type: str) -> dict[str, Any]:
    try:
        resource = template["Resources"][logical_id]
    except KeyError:
        raise LocalResourceError(f"template has no resource {logical_id!r}") from None
    if resource.get("Type") != expected_type:
        raise LocalResourceError(f"{logical_id} is {resource.get('Type')}, expected {expected_type}")
    return resource


def table_definition(
    template: Mapping[str, Any],
    table_name: str,
    parameters: Mapping[str, Any] | None = None,
    logical_id: str = TABLE_LOGICAL_ID,
) -> dict[str, Any]:
    """boto3 arguments for the table: ``{"create_table": {...}, "time_to_live": {...}|None}``."""
    resource = _resource(template, logical_id, "AWS::DynamoDB::Table")
    resolver = _Resolver(template, template_parameters(template, parameters), region="local")
    props = resolver.resolve({k: v for k, v in resource["Properties"].items() if k != "TableName"})

    create: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    provisioned = create["BillingMode"] == "PROVISIONED"
    if provisioned:
        create["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        indexes = []
        for index in props.get(key) or []:
            entry = {
                "IndexName": index["IndexName"],
                "KeySchema": index["KeySchema"],
                "Projection": index["Projection"],
            }
            if provisioned and "ProvisionedThroughput" in index:
                entry["ProvisionedThroughput"] = index["ProvisionedThroughput"]
            indexes.append(entry)
        if indexes:
            create[key] = indexes
    stream = props.get("StreamSpecification")
    if stream:
        create["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": stream["StreamViewType"],
        }
    ttl = props.get("TimeToLiveSpecification")
    time_to_live = None
    if ttl and str(ttl.get("Enabled", False)).lower() == "true":
        time_to_live = {"AttributeName": ttl["AttributeName"], "Enabled": True}
    return {"create_table": create, "time_to_live": time_to_live}


def queue_definitions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{logical_id: {"name_suffix": str, "properties": {...}}}`` for every queue."""
    queues: dict[str, dict[str, Any]] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::SQS::Queue":
            continue
        props = resource.get("Properties") or {}
        name = props.get("QueueName")
        text = name.get("Fn::Sub") if isinstance(name, dict) else None
        if not isinstance(text, str) or not text.startswith(NAME_PREFIX):
            raise LocalResourceError(f'{logical_id}.QueueName must be !Sub "{NAME_PREFIX}<suffix>" to map it locally')
        unknown = set(props) - _QUEUE_ATTRIBUTE_PROPERTIES - _QUEUE_IGNORED_PROPERTIES
        if unknown:
            raise LocalResourceError(f"{logical_id}: no local mapping for {sorted(unknown)}")
        queues[logical_id] = {"name_suffix": text[len(NAME_PREFIX) :], "properties": props}
    return queues


def _attribute_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def queue_attributes(
    template: Mapping[str, Any],
    queues: Mapping[str, Mapping[str, str]],
    queue_prefix: str,
    region: str,
    *,
    parameters: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, str]]:
    """SQS attributes (``set_queue_attributes`` form) of every template queue.

    ``queues`` maps each queue's logical id to its local ``Arn``, ``QueueUrl``
    and ``QueueName``; references between queues (RedrivePolicy,
    RedriveAllowPolicy) resolve to those. ``overrides`` replaces single
    attributes per logical id. Queues that others point at come first.
    """
    definitions = queue_definitions(template)
    account_id = next(iter(queues.values()))["Arn"].split(":")[4]
    resolver = _Resolver(
        template,
        template_parameters(template, parameters),
        region=region,
        account_id=account_id,
        name_prefix=queue_prefix,
        attributes={lid: {**values, "Ref": values["QueueUrl"]} for lid, values in queues.items()},
    )
    result: dict[str, dict[str, str]] = {}
    for logical_id in sorted(definitions, key=lambda lid: "RedrivePolicy" in definitions[lid]["properties"]):
        props = definitions[logical_id]["properties"]
        values = {
            key: resolver.resolve(value)
            for key, value in props.items()
            if key in _QUEUE_ATTRIBUTE_PROPERTIES and key not in _QUEUE_CREATE_ONLY
        }
        values.update((overrides or {}).get(logical_id, {}))
        result[logical_id] = {key: _attribute_value(value) for key, value in values.items()}
    return result


# -- creation ------------------------------------------------------------------


def _credentials() -> dict[str, str | None]:
    """Credentials for local endpoints: the environment's, else dummy ones.

    Only environment variables are consulted: the full boto3 chain could query
    the instance metadata service, and local endpoints never need real keys.
    """
    key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return {
            "aws_access_key_id": key,
            "aws_secret_access_key": secret,
            "aws_session_token": os.environ.get("AWS_SESSION_TOKEN"),
        }
    return {"aws_access_key_id": "test", "aws_secret_access_key": "test", "aws_session_token": None}


def _client(service: str, endpoint: str, region: str):
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
        **_credentials(),
    )


def _ensure_table(client, definition: Mapping[str, Any], timeout: float) -> str:
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


def _ensure_queue(client, name: str, create_attributes: Mapping[str, str]) -> str:
    try:
        return client.get_queue_url(QueueName=name)["QueueUrl"]
    except client.exceptions.QueueDoesNotExist:
        return client.create_queue(QueueName=name, Attributes=dict(create_attributes))["QueueUrl"]


def create_local_resources(
    dynamodb_endpoint: str,
    sqs_endpoint: str,
    table_name: str,
    queue_prefix: str,
    region: str = "us-east-1",
    *,
    sync_queue_visibility_seconds: int | None = None,
    receive_wait_seconds: int | None = None,
    parameters: Mapping[str, Any] | None = None,
    template_path: os.PathLike | None = None,
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

    ddb = _client("dynamodb", dynamodb_endpoint, region)
    stream_arn = _ensure_table(ddb, table_definition(template, table_name, parameters), timeout)

    sqs = _client("sqs", sqs_endpoint, region)
    definitions = queue_definitions(template)
    for required in (SYNC_QUEUE_LOGICAL_ID, SYNC_DLQ_LOGICAL_ID):
        if required not in definitions:
            raise LocalResourceError(f"template has no queue {required!r}")

    # Phase 1: every queue exists, so ARNs are known for cross references.
    attributes: dict[str, dict[str, str]] = {}
    for logical_id, definition in definitions.items():
        name = queue_prefix + definition["name_suffix"]
        create_only = {
            key: _attribute_value(definition["properties"][key])
            for key in _QUEUE_CREATE_ONLY
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
