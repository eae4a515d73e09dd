"""infra/chalice-merge.yaml merged by `chalice package --merge-template`, and `make package`.

A fixture app with the real app's handler names proves the mechanism: chalice's
logical ids, the deep merge, and that the merged SAM template passes cfn-lint.
`make package` on the real app then writes both deployable templates, linted, with
one IAM role per function holding exactly what that function calls, and API Gateway's
own answers (gateway responses, wrong methods, unknown paths) in the API's error envelope.
Every test here reads the one packaging and linting of the test session.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from infra_support import (
    MERGE_TEMPLATE,
    QUEUE_DECORATORS,
    RESOURCES_TEMPLATE,
    ROOT,
    Packaged,
    PackagedTemplates,
    role_statements,
)
from jsonschema import Draft202012Validator

from devstack.template import load_template

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

# The real app's roles (`make package`).
TABLE_ITEMS_API = {"BatchGetItem", "ConditionCheckItem", "GetItem", "PutItem", "Query", "UpdateItem"}
LOGS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
STREAM = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}
# function -> (its role, {statement: (actions, resources)}); resources as labelled by `infra_support.label`.
EXPECTED_ROLES: dict[str, tuple[str, dict[str, tuple[set[str], set[str]]]]] = {
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

# What API Gateway answers itself (infra/chalice-merge.yaml) is the API's error envelope too.
RESPONSES = "x-amazon-apigateway-gateway-responses"
# What API Gateway can answer without the function: every one must be in the envelope.
REQUIRED = {"DEFAULT_4XX": None, "DEFAULT_5XX": None, "MISSING_AUTHENTICATION_TOKEN": "404",
            "REQUEST_TOO_LARGE": "413", "UNSUPPORTED_MEDIA_TYPE": "415", "THROTTLED": "429", "QUOTA_EXCEEDED": "429",
            "INTEGRATION_FAILURE": "502", "INTEGRATION_TIMEOUT": "504"}
# $context variables as API Gateway substitutes them (messageString arrives quoted).
CONTEXT = {"$context.error.messageString": json.dumps('Invalid "input"'),
           "$context.error.responseType": "DEFAULT_4XX", "$context.requestId": "c0ffee-1"}


def gateway_responses(template: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"][RESPONSES]
    return responses


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


def test_merged_template_passes_cfn_lint_with_a_queue_named_not_given_by_arn(
        packaged_templates: PackagedTemplates) -> None:
    """The app gives its queues by ARN, as the real app does: that merged template is linted as `make package`
    writes it (test_package_writes_linted_templates_with_partial_batch_failures)."""
    assert packaged_templates.lint_problems(packaged_templates.fixture["queue-name"].merged_path) == []


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
    """Every role is scoped; the exact actions per function are checked on the real app below."""
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


@pytest.fixture(scope="module")
def sam(packaged_templates: PackagedTemplates) -> dict[str, Any]:
    """The real app's SAM template as `make package` wrote it."""
    return load_template(packaged_templates.app[1])


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


def test_each_function_has_its_own_role_with_exactly_what_it_calls(sam: dict[str, Any]) -> None:
    resources = sam["Resources"]
    functions = {k for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    assert functions == set(EXPECTED_ROLES), "a function without an expected role: add it here and to the merge"
    roles = {k for k, v in resources.items() if v["Type"] == "AWS::IAM::Role"}
    assert roles == {role for role, _ in EXPECTED_ROLES.values()}  # no shared DefaultRole left behind
    for function, (role, expected) in EXPECTED_ROLES.items():
        assert resources[function]["Properties"]["Role"] == {"Fn::GetAtt": [role, "Arn"]}, function
        handler = resources[function]["Properties"]["FunctionName"]["Fn::Sub"].removeprefix("${AppName}-${Stage}-")
        logs = (LOGS, {f"logs:{handler}", f"logs:{handler}:streams"})
        assert role_statements(sam, role) == {**expected, "Logs": logs}, function


def test_no_function_may_scan_batch_write_move_dead_letters_or_read_a_secret_it_does_not_use(
        sam: dict[str, Any]) -> None:
    resources = sam["Resources"]
    everything = [action for role, _ in EXPECTED_ROLES.values() for actions, _ in role_statements(sam, role).values()
                  for action in actions]
    assert not {"dynamodb:Scan", "dynamodb:BatchWriteItem", "sqs:StartMessageMoveTask"} & set(everything)
    api = role_statements(sam, "ApiHandlerRole")
    assert "param:stripe-api-key" not in api["Secrets"][1]
    assert not any(action.startswith("sqs:") for actions, _ in api.values() for action in actions)
    for function, (role, _) in EXPECTED_ROLES.items():
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        wanted = {"param:" + value["Fn::Sub"].rsplit("/", 1)[1] for name, value in variables.items()
                  if name.endswith("_PARAM")}
        readable = role_statements(sam, role).get("Secrets", (set(), set()))[1]
        # A function reads every *_PARAM it is given at cold start: each must be one its role may read.
        assert wanted == readable, function


def test_every_answer_api_gateway_gives_itself_is_customised(sam: dict[str, Any]) -> None:
    responses = gateway_responses(sam)
    assert set(REQUIRED) <= set(responses)
    for response_type, status in REQUIRED.items():
        assert responses[response_type].get("statusCode") == status, response_type


@pytest.mark.parametrize("response_type", sorted(REQUIRED))
def test_each_gateway_response_renders_the_documented_error_envelope(response_type: str) -> None:
    from chalicelib.api.openapi import openapi_document

    rendered = gateway_responses(load_template(MERGE_TEMPLATE))[response_type]["responseTemplates"]["application/json"]
    for variable, value in CONTEXT.items():
        rendered = rendered.replace(variable, value)
    body = json.loads(rendered)
    schema = {"$ref": "#/components/schemas/Error", "components": openapi_document()["components"]}
    assert list(Draft202012Validator(schema).iter_errors(body)) == []
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["details"]["request_id"] == "c0ffee-1"


def test_every_route_takes_every_method_so_api_gateway_hands_wrong_ones_to_the_app(sam: dict[str, Any]) -> None:
    paths = sam["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    import app as application
    from chalicelib.api.fallbacks import CATCH_ALL_DEPTH, METHODS, served_routes

    served = {path for _, path in served_routes(application.app)}
    catch_alls = {"/" + "/".join(f"{{segment{i}}}" for i in range(depth)) for depth in range(CATCH_ALL_DEPTH + 1)}
    assert served | catch_alls == set(paths)
    for path in paths:
        assert set(paths[path]) == {method.lower() for method in METHODS}, path
        for operation in paths[path].values():
            assert operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy", path
