"""infra/chalice-merge.yaml merged by `chalice package --merge-template`, and `make package`.

A fixture app with the real app's handler names proves the mechanism: chalice's
logical ids, the deep merge, and that the merged SAM template passes cfn-lint.
`make package` on the real app then writes both deployable templates, linted.
Every test here reads the one packaging and linting of the test session.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from infra_support import MERGE_TEMPLATE, QUEUE_DECORATORS, RESOURCES_TEMPLATE, ROOT, Packaged, PackagedTemplates

from devstack.template import load_template

FUNCTIONS = {
    "handle_table_changes": "HandleTableChanges",
    "sync_invoices": "SyncInvoices",
    "finalize_month": "FinalizeMonth",
    "reconcile": "Reconcile",
    "api_handler": "APIHandler",
}
ENVIRONMENT = {
    "TABLE_NAME",
    "SYNC_QUEUE_URL",
    "SYNC_DLQ_URL",
    "STRIPE_API_KEY_PARAM",
    "STRIPE_WEBHOOK_SECRET_PARAM",
    "TOKEN_PEPPER_PARAM",
}
STACK_PARAMETERS = {
    "AppName": "usage-invoicing",
    "Stage": "dev",
    "ResourcesStackName": "usage-invoicing-dev-resources",
    "AlarmTopicArn": "",
}


@pytest.fixture(params=sorted(QUEUE_DECORATORS))
def packaged(request: pytest.FixtureRequest, packaged_templates: PackagedTemplates) -> Packaged:
    return packaged_templates.fixture[request.param]


@pytest.fixture(scope="module")
def merge_template() -> dict[str, Any]:
    return load_template(MERGE_TEMPLATE)


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def test_chalice_generates_the_ids_the_merge_template_relies_on(packaged: Packaged) -> None:
    resources = packaged.plain["Resources"]
    for logical_id in FUNCTIONS.values():
        assert resources[logical_id]["Type"] == "AWS::Serverless::Function"
    assert resources["DefaultRole"]["Type"] == "AWS::IAM::Role"
    events = {name: resources[name]["Properties"].get("Events", {}) for name in FUNCTIONS.values()}
    assert events["HandleTableChanges"]["HandleTableChangesDynamodbEventSource"]["Type"] == "DynamoDB"
    assert events["SyncInvoices"]["SyncInvoicesSqsEventSource"]["Type"] == "SQS"
    assert events["FinalizeMonth"]["FinalizeMonthEvent"]["Type"] == "Schedule"
    assert events["Reconcile"]["ReconcileEvent"]["Type"] == "Schedule"


def test_every_partial_entry_has_a_chalice_counterpart(packaged: Packaged, merge_template: dict[str, Any]) -> None:
    """A typo in a logical id would otherwise create a resource without a Type."""
    chalice_resources = packaged.plain["Resources"]
    for logical_id, entry in merge_template["Resources"].items():
        if "Type" in entry:
            assert logical_id not in chalice_resources, f"{logical_id} would replace chalice's resource"
            continue
        assert logical_id in chalice_resources, f"chalice generates no {logical_id}"
        for event_name in entry.get("Properties", {}).get("Events", {}):
            assert event_name in chalice_resources[logical_id]["Properties"]["Events"], event_name
    for resource in packaged.merged["Resources"].values():
        assert "Type" in resource


def test_merged_template_passes_cfn_lint(packaged: Packaged, packaged_templates: PackagedTemplates) -> None:
    assert packaged_templates.lint_problems(packaged.merged_path) == []


def test_merge_leaves_no_combined_intrinsics_or_yaml_aliases(packaged: Packaged) -> None:
    for node in _walk(packaged.merged):
        if isinstance(node, dict) and any(key == "Ref" or key.startswith("Fn::") for key in node):
            assert len(node) == 1, f"intrinsic mixed with other keys: {node}"
    text = packaged.merged_path.read_text()
    assert "&id" not in text and "*id" not in text  # CloudFormation rejects YAML aliases


def test_sqs_event_source(packaged: Packaged) -> None:
    event = packaged.resource("SyncInvoices")["Properties"]["Events"]["SyncInvoicesSqsEventSource"]
    assert event["Type"] == "SQS"
    p = event["Properties"]
    assert p["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert p["Queue"] == {
        "Fn::Sub": [
            "${SyncQueueArn}",
            {"SyncQueueArn": {"Fn::ImportValue": {"Fn::Sub": "${ResourcesStackName}-SyncQueueArn"}}},
        ]
    }
    assert p["BatchSize"] == 10  # chalice's values survive the merge


def test_dynamodb_event_source(packaged: Packaged) -> None:
    event = packaged.resource("HandleTableChanges")["Properties"]["Events"]["HandleTableChangesDynamodbEventSource"]
    assert event["Type"] == "DynamoDB"
    p = event["Properties"]
    assert p["Stream"] == {
        "Fn::Sub": [
            "${TableStreamArn}",
            {"TableStreamArn": {"Fn::ImportValue": {"Fn::Sub": "${ResourcesStackName}-TableStreamArn"}}},
        ]
    }
    assert p["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert p["BisectBatchOnFunctionError"] is True
    assert isinstance(p["MaximumRetryAttempts"], int) and 0 <= p["MaximumRetryAttempts"] <= 10000
    assert 60 <= p["MaximumRecordAgeInSeconds"] <= 604800
    assert p["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}}}
    assert p["StartingPosition"] == "TRIM_HORIZON"
    assert p["BatchSize"] == 100


def test_stream_failure_queue(packaged: Packaged) -> None:
    queue = packaged.resource("StreamFailureQueue")
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["MessageRetentionPeriod"] == 1209600
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    alarm = packaged.resource("StreamFailureQueueNotEmptyAlarm")["Properties"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["StreamFailureQueue", "QueueName"]}}]


def test_every_function_gets_a_fixed_name_and_the_environment(packaged: Packaged) -> None:
    for handler, logical_id in FUNCTIONS.items():
        p = packaged.resource(logical_id)["Properties"]
        assert p["FunctionName"] == {"Fn::Sub": "${AppName}-${Stage}-" + handler}
        variables = p["Environment"]["Variables"]
        assert set(variables) >= ENVIRONMENT
        assert variables["TABLE_NAME"] == {"Fn::ImportValue": {"Fn::Sub": "${ResourcesStackName}-TableName"}}
        assert variables["SYNC_QUEUE_URL"] == {"Fn::ImportValue": {"Fn::Sub": "${ResourcesStackName}-SyncQueueUrl"}}
        assert variables["SYNC_DLQ_URL"] == {"Fn::ImportValue": {"Fn::Sub": "${ResourcesStackName}-SyncDLQUrl"}}
        for name in ("STRIPE_API_KEY_PARAM", "STRIPE_WEBHOOK_SECRET_PARAM", "TOKEN_PEPPER_PARAM"):
            assert variables[name]["Fn::Sub"].startswith("/${AppName}/${Stage}/"), name
        assert variables["LOG_LEVEL"] == "INFO"  # chalice's own variables are kept


def test_worker_timeout_comes_from_the_resources_stack(packaged: Packaged) -> None:
    timeout = packaged.resource("SyncInvoices")["Properties"]["Timeout"]
    assert timeout == {"Fn::ImportValue": {"Fn::Sub": "${ResourcesStackName}-WorkerTimeoutSeconds"}}


def test_role_policy_is_least_privilege(packaged: Packaged) -> None:
    role = packaged.resource("DefaultRole")
    (policy,) = role["Properties"]["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    for statement in statements:
        assert statement["Effect"] == "Allow"
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            assert resource != "*" and "arn:*" not in json.dumps(resource), statement
        for action in statement["Action"]:
            assert "*" not in action, action
    by_sid = {s["Sid"]: s for s in statements}
    stream_actions = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
    assert stream_actions <= set(by_sid["BillingTableStream"]["Action"])
    consumer_actions = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
    assert consumer_actions | {"sqs:SendMessage"} <= set(by_sid["SyncQueue"]["Action"])
    assert "sqs:SendMessage" in by_sid["StreamFailureDestination"]["Action"]
    assert by_sid["Parameters"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/${AppName}/${Stage}/*"
    }
    table_resources = json.dumps(by_sid["BillingTable"]["Resource"])
    assert "/index/*" in table_resources and "-TableArn" in table_resources


def test_imports_match_the_resources_stack_exports(packaged: Packaged, resources_template: dict[str, Any]) -> None:
    exported = set(resources_template["Outputs"])
    imported = set()
    for node in _walk(packaged.merged):
        if isinstance(node, dict) and "Fn::ImportValue" in node:
            name = node["Fn::ImportValue"]["Fn::Sub"]
            assert name.startswith("${ResourcesStackName}-")
            imported.add(name.removeprefix("${ResourcesStackName}-"))
    assert imported
    assert imported <= exported


def test_function_names_match_the_resources_stack_alarms(
    packaged: Packaged, resources_template: dict[str, Any]
) -> None:
    alarms = resources_template["Resources"]
    worker_default = alarms["WorkerErrorsAlarm"]["Properties"]["Dimensions"][0]["Value"]["Fn::If"][1]
    stream_default = alarms["StreamIteratorAgeAlarm"]["Properties"]["Dimensions"][0]["Value"]["Fn::If"][1]
    assert packaged.resource("SyncInvoices")["Properties"]["FunctionName"] == worker_default
    assert packaged.resource("HandleTableChanges")["Properties"]["FunctionName"] == stream_default
    merged_params = packaged.merged["Parameters"]
    assert merged_params["AppName"]["Default"] == resources_template["Parameters"]["AppName"]["Default"]
    assert merged_params["Stage"]["AllowedValues"] == resources_template["Parameters"]["Stage"]["AllowedValues"]


def test_project_chalice_config_keeps_the_shared_default_role() -> None:
    """The merge template replaces DefaultRole's policy; other role setups would bypass it."""
    config_path = ROOT / ".chalice" / "config.json"
    assert config_path.exists(), "the project has no .chalice/config.json"
    config = json.loads(config_path.read_text())
    scopes = [config, *config.get("stages", {}).values()]
    for stage in list(config.get("stages", {}).values()):
        scopes.extend(stage.get("lambda_functions", {}).values())
    scopes.extend(config.get("lambda_functions", {}).values())
    for scope in scopes:
        assert scope.get("autogen_policy", True) is True
        assert scope.get("manage_iam_role", True) is True
        assert "iam_role_arn" not in scope
        assert "iam_policy_file" not in scope
    assert config["app_name"] == STACK_PARAMETERS["AppName"]


def test_sam_transform_produces_the_event_source_mappings(packaged: Packaged, monkeypatch: pytest.MonkeyPatch) -> None:
    translator = pytest.importorskip(
        "samtranslator.translator.transform",
        reason="aws-sam-translator is not installed (optional; cfn-lint already validated the SAM schema)",
    )

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the translator reads it; it calls no AWS API

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    template = json.loads(json.dumps(packaged.merged))
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/deployment.zip"
    transformed = translator.transform(template, dict(STACK_PARAMETERS), NoManagedPolicies())
    mappings = {
        logical_id: resource["Properties"]
        for logical_id, resource in transformed["Resources"].items()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
    }
    sqs = mappings["SyncInvoicesSyncInvoicesSqsEventSource"]
    assert sqs["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    stream = mappings["HandleTableChangesHandleTableChangesDynamodbEventSource"]
    assert stream["BisectBatchOnFunctionError"] is True
    assert stream["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}


def test_package_writes_linted_templates_with_partial_batch_failures(packaged_templates: PackagedTemplates) -> None:
    resources_path, sam_path = packaged_templates.app
    assert resources_path.read_text() == RESOURCES_TEMPLATE.read_text()
    assert packaged_templates.lint_problems(resources_path) == []
    assert packaged_templates.lint_problems(sam_path) == []
    resources = load_template(sam_path)["Resources"]
    sqs_events = resources["SyncInvoices"]["Properties"]["Events"]["SyncInvoicesSqsEventSource"]["Properties"]
    assert sqs_events["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    stream = resources["HandleTableChanges"]["Properties"]["Events"]["HandleTableChangesDynamodbEventSource"]
    assert stream["Properties"]["BisectBatchOnFunctionError"] is True
