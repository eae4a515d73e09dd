"""infra/chalice-merge.yaml merged by `chalice package --merge-template`.

The real app.py is packaged by the Makefile; here a fixture app with the same
handler names proves the mechanism: chalice's logical ids, the deep merge, and
that the merged SAM template passes cfn-lint.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from infra_support import MERGE_TEMPLATE, ROOT, run_cfn_lint, venv_tool

from devstack.resources import load_template

STREAM_PLACEHOLDER = "arn:aws:dynamodb:us-east-1:123456789012:table/placeholder/stream/2024-01-01T00:00:00.000"
QUEUE_ARN_PLACEHOLDER = "arn:aws:sqs:us-east-1:123456789012:placeholder-sync"

# The two ways app.py may name the queue: chalice emits {"Fn::Sub": ...} for a
# queue name and a plain string for an ARN.
QUEUE_DECORATORS = {
    "queue-name": 'queue="placeholder-sync"',
    "queue-arn": f'queue_arn="{QUEUE_ARN_PLACEHOLDER}"',
}

FIXTURE_APP = """\
from chalice import Chalice, Cron, Rate

app = Chalice(app_name="usage-invoicing")


@app.route("/health")
def health():
    return {{"ok": True}}


@app.on_dynamodb_record(stream_arn="{stream}", batch_size=100)
def handle_table_changes(event):
    return None


@app.on_sqs_message({queue}, batch_size=10)
def sync_invoices(event):
    return None


@app.on_sqs_message(queue_arn="arn:aws:sqs:us-east-1:123456789012:placeholder-deliveries", batch_size=10)
def deliver_webhooks(event):
    return None


@app.schedule(Cron(5, "*", "*", "*", "?", "*"))
def finalize_month(event):
    return None


@app.schedule(Rate(1, unit=Rate.HOURS))
def reconcile(event):
    return None


@app.schedule(Rate(5, unit=Rate.MINUTES))
def canary(event):
    return None
"""

FIXTURE_CONFIG = {
    "version": "2.0",
    "app_name": "usage-invoicing",
    "automatic_layer": False,
    "autogen_policy": False,
    "iam_policy_file": "policy-deny-all.json",
    "environment_variables": {"LOG_LEVEL": "INFO"},
    "lambda_timeout": 30,
    "stages": {
        "dev": {
            "api_gateway_stage": "api",
            # A value the merge template must win over.
            "environment_variables": {"TABLE_NAME": "from-config"},
        }
    },
}

FUNCTIONS = {
    "handle_table_changes": "HandleTableChanges",
    "sync_invoices": "SyncInvoices",
    "deliver_webhooks": "DeliverWebhooks",
    "finalize_month": "FinalizeMonth",
    "reconcile": "Reconcile",
    "canary": "Canary",
    "api_handler": "APIHandler",
}
ROLES = {logical_id: ("ApiHandlerRole" if logical_id == "APIHandler" else f"{logical_id}Role")
         for logical_id in FUNCTIONS.values()}
STACK_PARAMETERS = {
    "AppName": "usage-invoicing",
    "Stage": "dev",
    "ResourcesStackName": "usage-invoicing-dev-resources",
    "AlarmTopicArn": "",
}


def _package_env() -> dict[str, str]:
    env = dict(os.environ)
    # chalice needs a region to build the template; it makes no AWS calls.
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.pop("AWS_PROFILE", None)
    return env


def _make_app(directory: Path, queue_decorator: str) -> Path:
    (directory / ".chalice").mkdir(parents=True)
    (directory / ".chalice" / "config.json").write_text(json.dumps(FIXTURE_CONFIG, indent=2))
    shutil.copy(ROOT / ".chalice" / "policy-deny-all.json", directory / ".chalice")
    (directory / "app.py").write_text(FIXTURE_APP.format(stream=STREAM_PLACEHOLDER, queue=queue_decorator))
    (directory / "requirements.txt").write_text("")
    return directory


def _package(app_dir: Path, out_dir: Path, merge_template: Path | None) -> subprocess.CompletedProcess[str]:
    command = [venv_tool("chalice"), "package", "--stage", "dev"]
    if merge_template is not None:
        command += ["--merge-template", str(merge_template)]
    command.append(str(out_dir))
    return subprocess.run(
        command,
        cwd=app_dir,
        env=_package_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


class Packaged:
    def __init__(self, plain: dict[str, Any], merged: dict[str, Any], merged_path: Path) -> None:
        self.plain = plain
        self.merged = merged
        self.merged_path = merged_path

    def resource(self, logical_id: str) -> dict[str, Any]:
        resource: dict[str, Any] = self.merged["Resources"][logical_id]
        return resource


@pytest.fixture(scope="module", params=sorted(QUEUE_DECORATORS))
def packaged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Packaged]:
    base = tmp_path_factory.mktemp(f"chalice-{request.param}")
    app_dir = _make_app(base / "app", QUEUE_DECORATORS[request.param])

    plain = _package(app_dir, base / "plain", None)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    merged = _package(app_dir, base / "merged", MERGE_TEMPLATE)
    assert merged.returncode == 0, merged.stdout + merged.stderr

    # A YAML merge template switches chalice to sam.yaml output.
    assert not (base / "merged" / "sam.json").exists()
    merged_path = base / "merged" / "sam.yaml"
    yield Packaged(
        plain=json.loads((base / "plain" / "sam.json").read_text()),
        merged=yaml.safe_load(merged_path.read_text()),
        merged_path=merged_path,
    )


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
    for logical_id, role in ROLES.items():
        assert resources[role]["Type"] == "AWS::IAM::Role"
        assert resources[logical_id]["Properties"]["Role"] == {"Fn::GetAtt": [role, "Arn"]}
    assert "DefaultRole" not in resources
    events = {name: resources[name]["Properties"].get("Events", {}) for name in FUNCTIONS.values()}
    assert events["HandleTableChanges"]["HandleTableChangesDynamodbEventSource"]["Type"] == "DynamoDB"
    assert events["SyncInvoices"]["SyncInvoicesSqsEventSource"]["Type"] == "SQS"
    assert events["FinalizeMonth"]["FinalizeMonthEvent"]["Type"] == "Schedule"
    assert events["Reconcile"]["ReconcileEvent"]["Type"] == "Schedule"
    assert events["Canary"]["CanaryEvent"]["Type"] == "Schedule"


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


def test_merged_template_passes_cfn_lint(packaged: Packaged) -> None:
    result = run_cfn_lint(packaged.merged_path)
    assert result.returncode == 0, result.stdout + result.stderr


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


def test_every_function_gets_a_fixed_name_and_the_environment_it_uses(packaged: Packaged) -> None:
    for handler, logical_id in FUNCTIONS.items():
        p = packaged.resource(logical_id)["Properties"]
        assert p["FunctionName"] == {"Fn::Sub": "${AppName}-${Stage}-" + handler}
        variables = p["Environment"]["Variables"]
        assert variables["TABLE_NAME"] == {"Fn::ImportValue": {"Fn::Sub": "${ResourcesStackName}-TableName"}}
        for name, value in variables.items():
            if name.endswith("_PARAM"):
                assert value["Fn::Sub"].startswith("/${AppName}/${Stage}/"), name
        assert variables["LOG_LEVEL"] == "INFO"  # chalice's own variables are kept
    api = packaged.resource("APIHandler")["Properties"]["Environment"]["Variables"]
    assert "STRIPE_API_KEY_PARAM" not in api and "SYNC_QUEUE_URL" not in api
    assert {"TOKEN_PEPPER_PARAM", "STRIPE_WEBHOOK_SECRET_PARAM"} <= set(api)
    worker = packaged.resource("SyncInvoices")["Properties"]["Environment"]["Variables"]
    assert {"SYNC_QUEUE_URL", "SYNC_DLQ_URL", "STRIPE_API_KEY_PARAM", "STRIPE_CANARY_API_KEY_PARAM"} <= set(worker)
    assert "TOKEN_PEPPER_PARAM" not in worker


def test_worker_timeout_comes_from_the_resources_stack(packaged: Packaged) -> None:
    timeout = packaged.resource("SyncInvoices")["Properties"]["Timeout"]
    assert timeout == {"Fn::ImportValue": {"Fn::Sub": "${ResourcesStackName}-WorkerTimeoutSeconds"}}


def test_api_function_gives_up_before_api_gateway_does(packaged: Packaged) -> None:
    # API Gateway's integration timeout is 29 s; the largest request takes 2 s at most (make bench).
    timeout = packaged.resource("APIHandler")["Properties"]["Timeout"]
    assert 2 < timeout < 29


def test_role_policies_are_least_privilege(packaged: Packaged) -> None:
    """Every role is scoped; the exact actions per function are checked on the real app in test_package_app."""
    for role in ROLES.values():
        (policy,) = packaged.resource(role)["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for resource in resources:
                assert resource != "*" and "arn:*" not in json.dumps(resource), statement
            for action in statement["Action"]:
                assert "*" not in action, action


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


def test_project_chalice_config_makes_one_role_per_function_from_the_deny_all_placeholder() -> None:
    """The merge template replaces each function role's policy; other role setups would bypass it."""
    config_path = ROOT / ".chalice" / "config.json"
    assert config_path.exists(), "the project has no .chalice/config.json"
    config = json.loads(config_path.read_text())
    assert config["autogen_policy"] is False and config["iam_policy_file"] == "policy-deny-all.json"
    placeholder = json.loads((ROOT / ".chalice" / "policy-deny-all.json").read_text())
    assert [s["Effect"] for s in placeholder["Statement"]] == ["Deny"]
    scopes = [*config.get("stages", {}).values()]
    for stage in list(config.get("stages", {}).values()):
        scopes.extend(stage.get("lambda_functions", {}).values())
    scopes.extend(config.get("lambda_functions", {}).values())
    for scope in [config, *scopes]:
        assert scope.get("manage_iam_role", True) is True
        assert "iam_role_arn" not in scope
    for scope in scopes:
        assert "autogen_policy" not in scope and "iam_policy_file" not in scope
        # A *_PARAM here would reach every function, which would read it at cold start without the permission.
        assert not [name for name in scope.get("environment_variables", {}) if name.endswith("_PARAM")]
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
    deliveries = mappings["DeliverWebhooksDeliverWebhooksSqsEventSource"]
    assert deliveries["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    stream = mappings["HandleTableChangesHandleTableChangesDynamodbEventSource"]
    assert stream["BisectBatchOnFunctionError"] is True
    assert stream["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}
