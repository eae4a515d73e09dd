"""infra/resources.yaml read as data: what its table and queues are, in the terms boto3 creates them with.

The YAML is read with short intrinsic tags (`!Ref`, `!GetAtt`, ...) turned into their long form. cfn-lint's
own loader reads the templates the same way (a test holds the two to it), but importing cfn-lint costs over
a second of CPU in every process that starts the local stack, for what these 25 lines do. Only the few
intrinsic functions the local mapping needs are evaluated: Ref, Fn::GetAtt, Fn::Sub, Fn::FindInMap.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEFAULT_TEMPLATE_PATH",
    "CloudFormationLoader",
    "LocalResourceError",
    "load_template",
    "queue_attributes",
    "queue_definitions",
    "table_definition",
    "template_parameters",
]

DEFAULT_TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "infra" / "resources.yaml"
TABLE_LOGICAL_ID = "BillingTable"
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
QUEUE_CREATE_ONLY = {"FifoQueue"}
_QUEUE_IGNORED_PROPERTIES = {"QueueName", "Tags"}


class LocalResourceError(RuntimeError):
    """The template cannot be mapped, or a local resource does not match it."""


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


def load_template(path: os.PathLike[str] | str | None = None) -> dict[str, Any]:
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


def attribute_value(value: Any) -> str:
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
            if key in _QUEUE_ATTRIBUTE_PROPERTIES and key not in QUEUE_CREATE_ONLY
        }
        values.update((overrides or {}).get(logical_id, {}))
        result[logical_id] = {key: attribute_value(value) for key, value in values.items()}
    return result
