"""Static checks of infra/resources.yaml (the stateful stack and its alarms); cfn-lint reads it with the
packaged templates (test_infra_chalice_merge.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from infra_support import MERGE_TEMPLATE, RESOURCES_TEMPLATE

from devstack.template import load_template

EXPECTED_OUTPUTS = {
    "TableName",
    "TableArn",
    "TableStreamArn",
    "SyncQueueUrl",
    "SyncQueueArn",
    "SyncDLQUrl",
    "SyncDLQArn",
    "DeliveryQueueUrl",
    "DeliveryQueueArn",
    "DeliveryDLQUrl",
    "DeliveryDLQArn",
}


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]["Properties"]


def test_short_tags_parse_to_long_form() -> None:
    template = load_template(RESOURCES_TEMPLATE)
    assert props(template, "SyncQueue")["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["SyncDLQ", "Arn"]}
    assert template["Outputs"]["TableArn"]["Value"] == {"Fn::GetAtt": ["BillingTable", "Arn"]}


@pytest.mark.parametrize("template", [RESOURCES_TEMPLATE, MERGE_TEMPLATE], ids=lambda path: path.name)
def test_templates_read_as_cfn_lint_reads_them(template: Path) -> None:
    from cfnlint.decode import decode

    linted, errors = decode(str(template))
    assert errors == []
    assert load_template(template) == json.loads(json.dumps(linted))


def test_parameters(resources_template: dict[str, Any]) -> None:
    params = resources_template["Parameters"]
    assert params["Stage"]["AllowedValues"] == ["dev", "prod"]
    assert params["WorkerTimeoutSeconds"]["Default"] == 60
    assert params["AlarmTopicArn"]["Default"] == ""
    assert resources_template["Conditions"]["HasAlarmTopic"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]
    }


def test_table(resources_template: dict[str, Any]) -> None:
    table = resources_template["Resources"]["BillingTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    p = table["Properties"]
    assert p["BillingMode"] == "PAY_PER_REQUEST"
    assert p["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    attribute_types = {a["AttributeName"]: a["AttributeType"] for a in p["AttributeDefinitions"]}
    assert attribute_types == {"pk": "S", "sk": "S", "gsi1pk": "S", "gsi1sk": "S"}
    (gsi,) = p["GlobalSecondaryIndexes"]
    assert gsi == {
        "IndexName": "gsi1",
        "KeySchema": [
            {"AttributeName": "gsi1pk", "KeyType": "HASH"},
            {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }
    assert p["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert p["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert p["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
    assert p["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_dead_letter_queue(resources_template: dict[str, Any]) -> None:
    dlq = resources_template["Resources"]["SyncDLQ"]
    assert dlq["Type"] == "AWS::SQS::Queue"
    p = dlq["Properties"]
    assert p["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert p["SqsManagedSseEnabled"] is True
    allow = p["RedriveAllowPolicy"]
    assert allow["redrivePermission"] == "byQueue"
    # The allowed source ARN is built from the sync queue's own name.
    (source_arn,) = allow["sourceQueueArns"]
    sync_name = props(resources_template, "SyncQueue")["QueueName"]["Fn::Sub"]
    assert source_arn["Fn::Sub"].endswith(":" + sync_name)
    assert source_arn["Fn::Sub"].startswith("arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:")


def test_sync_queue(resources_template: dict[str, Any]) -> None:
    queue = resources_template["Resources"]["SyncQueue"]
    assert queue["Type"] == "AWS::SQS::Queue"
    p = queue["Properties"]
    assert "FifoQueue" not in p
    assert p["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["SyncDLQ", "Arn"]}
    assert p["RedrivePolicy"]["maxReceiveCount"] >= 5
    assert p["SqsManagedSseEnabled"] is True
    assert p["ReceiveMessageWaitTimeSeconds"] == 20
    # The DLQ keeps the original enqueue time, so it must retain longer.
    dlq_retention = props(resources_template, "SyncDLQ")["MessageRetentionPeriod"]
    assert p["MessageRetentionPeriod"] < dlq_retention


def test_queue_visibility_is_at_least_six_worker_timeouts(resources_template: dict[str, Any]) -> None:
    visibility = props(resources_template, "SyncQueue")["VisibilityTimeout"]
    map_name, key, attribute = visibility["Fn::FindInMap"]
    assert key == {"Ref": "WorkerTimeoutSeconds"}
    table = resources_template["Mappings"][map_name]
    worker_timeout = resources_template["Parameters"]["WorkerTimeoutSeconds"]
    allowed = worker_timeout["AllowedValues"]
    assert worker_timeout["Default"] in allowed
    assert {str(v) for v in allowed} == set(table)
    for timeout in allowed:
        assert table[str(timeout)][attribute] >= 6 * int(timeout)
        # Lambda's maximum timeout and SQS's maximum visibility timeout.
        assert int(timeout) <= 900
        assert table[str(timeout)][attribute] <= 43200
    assert table[str(worker_timeout["Default"])][attribute] == 360


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def test_alarms(resources_template: dict[str, Any]) -> None:
    alarms = _alarms(resources_template)
    by_metric = {(a["Namespace"], a["MetricName"]): a for a in alarms.values()}
    assert set(by_metric) == {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "IteratorAge"),
        ("UsageInvoicing", "SyncFailed"),
        ("UsageInvoicing", "InvoiceMismatch"),
        ("UsageInvoicing", "PaymentStatusDrift"),
        ("UsageInvoicing", "CanaryHealthy"),
    }
    dlq = alarms["SyncDLQNotEmptyAlarm"]
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["SyncDLQ", "QueueName"]}}]
    assert (dlq["ComparisonOperator"], dlq["Threshold"]) == ("GreaterThanThreshold", 0)

    age = by_metric[("AWS/SQS", "ApproximateAgeOfOldestMessage")]
    assert age["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["SyncQueue", "QueueName"]}}]
    assert (age["ComparisonOperator"], age["Threshold"]) == ("GreaterThanThreshold", 900)

    errors = by_metric[("AWS/Lambda", "Errors")]
    (dimension,) = errors["Dimensions"]
    assert dimension["Name"] == "FunctionName"
    assert dimension["Value"]["Fn::If"][0] == "DefaultWorkerFunctionName"
    assert dimension["Value"]["Fn::If"][2] == {"Ref": "WorkerFunctionName"}

    iterator = by_metric[("AWS/Lambda", "IteratorAge")]
    (dimension,) = iterator["Dimensions"]
    assert dimension["Value"]["Fn::If"][2] == {"Ref": "StreamHandlerFunctionName"}
    assert (iterator["ComparisonOperator"], iterator["Threshold"]) == ("GreaterThanThreshold", 60000)

    deliveries = alarms["DeliveryDLQNotEmptyAlarm"]
    assert deliveries["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeliveryDLQ", "QueueName"]}}]

    for metric in ("SyncFailed", "InvoiceMismatch", "PaymentStatusDrift"):
        alarm = by_metric[("UsageInvoicing", metric)]
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "invoicing"}]
        assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["Statistic"]) == (
            "GreaterThanThreshold",
            0,
            "Sum",
        )

    canary = by_metric[("UsageInvoicing", "CanaryHealthy")]
    assert (canary["ComparisonOperator"], canary["Threshold"], canary["Statistic"]) == (
        "LessThanThreshold", 1, "Minimum")
    assert canary["TreatMissingData"] == "breaching"  # a canary that stopped reporting is unhealthy too
    assert resources_template["Resources"]["CanaryUnhealthyAlarm"]["Condition"] == "HasCanary"

    conditional_topic = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    for logical_id, alarm in alarms.items():
        if alarm is not canary:
            assert alarm["TreatMissingData"] == "notBreaching", logical_id
        assert alarm["AlarmActions"] == conditional_topic, logical_id
        assert alarm["OKActions"] == conditional_topic, logical_id


def test_outputs_are_exported_with_the_stack_name(resources_template: dict[str, Any]) -> None:
    outputs = resources_template["Outputs"]
    assert EXPECTED_OUTPUTS <= set(outputs)
    for name, output in outputs.items():
        assert output["Export"]["Name"] == {"Fn::Sub": "${AWS::StackName}-" + name}
    assert outputs["TableStreamArn"]["Value"] == {"Fn::GetAtt": ["BillingTable", "StreamArn"]}
    assert outputs["SyncQueueUrl"]["Value"] == {"Ref": "SyncQueue"}
    assert outputs["SyncDLQArn"]["Value"] == {"Fn::GetAtt": ["SyncDLQ", "Arn"]}
