"""`make package` on the real app: deployable templates that pass cfn-lint, with the merge applied, and one
IAM role per function holding exactly what that function calls."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
import yaml
from infra_support import ROOT

from devstack.resources import CloudFormationLoader

TABLE_ITEMS_API = {"BatchGetItem", "ConditionCheckItem", "GetItem", "PutItem", "Query", "UpdateItem"}
LOGS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
STREAM = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}
# function -> (its role, {statement: (actions, resources)}); resources as labelled by `_label` below.
EXPECTED: dict[str, tuple[str, dict[str, tuple[set[str], set[str]]]]] = {
    "APIHandler": ("ApiHandlerRole", {
        # DeleteItem: a plan change removes the draft's recurring lines it made stale.
        "BillingTable": ({f"dynamodb:{a}" for a in TABLE_ITEMS_API | {"DeleteItem"}}, {"table"}),
        "Secrets": ({"ssm:GetParameter"}, {"param:token-pepper", "param:stripe-webhook-secret"}),
    }),
    "HandleTableChanges": ("HandleTableChangesRole", {
        "BillingTableStream": (STREAM, {"table/stream/*"}),
        "BillingTable": ({"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"},
                         {"table"}),
        "SyncQueue": ({"sqs:SendMessage"}, {"import:SyncQueueArn"}),
        "DeliveryQueue": ({"sqs:SendMessage"}, {"import:DeliveryQueueArn"}),
        "StreamFailureDestination": ({"sqs:SendMessage"}, {"StreamFailureQueue"}),
    }),
    "DeliverWebhooks": ("DeliverWebhooksRole", {
        "BillingTable": ({"dynamodb:GetItem", "dynamodb:UpdateItem"}, {"table"}),
        "DeliveryQueue": ({"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                           "sqs:ReceiveMessage"}, {"import:DeliveryQueueArn"}),
        "DeliveryDeadLetterQueue": ({"sqs:SendMessage"}, {"import:DeliveryDLQArn"}),
    }),
    "SyncInvoices": ("SyncInvoicesRole", {
        "BillingTable": ({"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query",
                          "dynamodb:UpdateItem"}, {"table"}),
        "SyncQueue": ({"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                       "sqs:ReceiveMessage"}, {"import:SyncQueueArn"}),
        "SyncDeadLetterQueue": ({"sqs:SendMessage"}, {"import:SyncDLQArn"}),
        "Secrets": ({"ssm:GetParameter"}, {"param:stripe-api-key", "param:stripe-canary-api-key"}),
    }),
    "FinalizeMonth": ("FinalizeMonthRole", {
        "BillingTable": ({"dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem",
                          "dynamodb:Query", "dynamodb:UpdateItem"}, {"table", "table/index/gsi1"}),
    }),
    "Reconcile": ("ReconcileRole", {
        "BillingTable": ({"dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"},
                         {"table", "table/index/gsi1"}),
        "SyncQueue": ({"sqs:SendMessage"}, {"import:SyncQueueArn"}),
        "Secrets": ({"ssm:GetParameter"}, {"param:stripe-api-key"}),
    }),
    "Canary": ("CanaryRole", {
        "BillingTable": ({f"dynamodb:{a}" for a in TABLE_ITEMS_API}, {"table", "table/index/gsi1"}),
        "Secrets": ({"ssm:GetParameter"}, {"param:stripe-canary-api-key"}),
    }),
}
TABLE_IMPORT = {"Fn::ImportValue": {"Fn::Sub": "${ResourcesStackName}-TableArn"}}


@pytest.fixture(scope="module")
def sam(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("package") / "build"
    result = subprocess.run([sys.executable, "-m", "devstack.package", "--out", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cfn-lint passed" in result.stdout
    assert (out / "resources.yaml").exists()
    packaged: dict[str, Any] = yaml.load((out / "app" / "sam.yaml").read_text(), Loader=CloudFormationLoader)
    return packaged


def _label(resource: Any) -> str:
    """A short, exact name for each resource shape the merge template uses."""
    if resource == TABLE_IMPORT:
        return "table"
    if isinstance(resource, dict) and "Fn::ImportValue" in resource:
        return "import:" + resource["Fn::ImportValue"]["Fn::Sub"].removeprefix("${ResourcesStackName}-")
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        assert resource["Fn::GetAtt"][1] == "Arn"
        return str(resource["Fn::GetAtt"][0])
    text = resource["Fn::Sub"]
    if isinstance(text, list):
        pattern, variables = text
        assert variables == {"TableArn": TABLE_IMPORT}
        return pattern.replace("${TableArn}", "table")
    base = "arn:${AWS::Partition}:"
    parameter = re.fullmatch(re.escape(base + "ssm:${AWS::Region}:${AWS::AccountId}:parameter/${AppName}/${Stage}/")
                             + r"([a-z-]+)", text)
    if parameter:
        return "param:" + parameter.group(1)
    logs = re.fullmatch(re.escape(base + "logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/${AppName}-"
                                  "${Stage}-") + r"(\w+)(:log-stream:\*)?", text)
    assert logs, text
    return f"logs:{logs.group(1)}{':streams' if logs.group(2) else ''}"


def _statements(sam: dict[str, Any], role: str) -> dict[str, tuple[set[str], set[str]]]:
    (policy,) = sam["Resources"][role]["Properties"]["Policies"]
    found = {}
    for statement in policy["PolicyDocument"]["Statement"]:
        assert statement["Effect"] == "Allow"
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        found[statement["Sid"]] = (set(statement["Action"]), {_label(r) for r in resources})
    return found


def test_package_writes_linted_templates_with_partial_batch_failures(sam: dict[str, Any]) -> None:
    resources = sam["Resources"]
    sqs_events = resources["SyncInvoices"]["Properties"]["Events"]["SyncInvoicesSqsEventSource"]["Properties"]
    assert sqs_events["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    stream = resources["HandleTableChanges"]["Properties"]["Events"]["HandleTableChangesDynamodbEventSource"]
    assert stream["Properties"]["BisectBatchOnFunctionError"] is True


def test_each_function_has_its_own_role_with_exactly_what_it_calls(sam: dict[str, Any]) -> None:
    resources = sam["Resources"]
    functions = {k for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    assert functions == set(EXPECTED), "a function without an expected role: add it here and to the merge template"
    roles = {k for k, v in resources.items() if v["Type"] == "AWS::IAM::Role"}
    assert roles == {role for role, _ in EXPECTED.values()}  # no shared DefaultRole left behind
    for function, (role, expected) in EXPECTED.items():
        assert resources[function]["Properties"]["Role"] == {"Fn::GetAtt": [role, "Arn"]}, function
        handler = resources[function]["Properties"]["FunctionName"]["Fn::Sub"].removeprefix("${AppName}-${Stage}-")
        logs = (LOGS, {f"logs:{handler}", f"logs:{handler}:streams"})
        assert _statements(sam, role) == {**expected, "Logs": logs}, function


def test_no_function_may_scan_batch_write_move_dead_letters_or_read_a_secret_it_does_not_use(
        sam: dict[str, Any]) -> None:
    resources = sam["Resources"]
    everything = [action for role, _ in EXPECTED.values() for actions, _ in _statements(sam, role).values()
                  for action in actions]
    assert not {"dynamodb:Scan", "dynamodb:BatchWriteItem", "sqs:StartMessageMoveTask"} & set(everything)
    api = _statements(sam, "ApiHandlerRole")
    assert "param:stripe-api-key" not in api["Secrets"][1]
    assert not any(action.startswith("sqs:") for actions, _ in api.values() for action in actions)
    for function, (role, _) in EXPECTED.items():
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        wanted = {"param:" + value["Fn::Sub"].rsplit("/", 1)[1] for name, value in variables.items()
                  if name.endswith("_PARAM")}
        readable = _statements(sam, role).get("Secrets", (set(), set()))[1]
        # A function reads every *_PARAM it is given at cold start: each must be one its role may read.
        assert wanted == readable, function
