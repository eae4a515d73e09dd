"""On AWS every error answer is the API's envelope too: API Gateway's own answers through the gateway responses
of infra/chalice-merge.yaml, and wrong methods and unknown paths through methods and resources that reach the
function. Packages the real app.py (without its dependencies, which only the Lambda zip needs)."""

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
from jsonschema import Draft202012Validator

from devstack.resources import CloudFormationLoader, load_template

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


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    app_dir = tmp_path_factory.mktemp("app")
    shutil.copy(ROOT / "app.py", app_dir / "app.py")
    shutil.copytree(ROOT / "chalicelib", app_dir / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / ".chalice", app_dir / ".chalice", ignore=shutil.ignore_patterns("deployments"))
    (app_dir / "requirements.txt").write_text("")
    out = app_dir / "out"
    environment = {k: v for k, v in os.environ.items() if k != "AWS_PROFILE"}
    result = subprocess.run([venv_tool("chalice"), "package", "--stage", "prod", "--merge-template",
                             str(MERGE_TEMPLATE), str(out)], cwd=app_dir, capture_output=True, text=True, timeout=300,
                            env={**environment, "AWS_DEFAULT_REGION": "us-east-1"}, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    path = out / "sam.yaml"
    yield yaml.load(path.read_text(), Loader=CloudFormationLoader), path


def test_every_answer_api_gateway_gives_itself_is_customised(packaged):
    template, _ = packaged
    responses = gateway_responses(template)
    assert set(REQUIRED) <= set(responses)
    for response_type, status in REQUIRED.items():
        assert responses[response_type].get("statusCode") == status, response_type


@pytest.mark.parametrize("response_type", sorted(REQUIRED))
def test_each_gateway_response_renders_the_documented_error_envelope(response_type):
    from chalicelib.api.openapi import openapi_document

    rendered = gateway_responses(load_template(MERGE_TEMPLATE))[response_type]["responseTemplates"]["application/json"]
    for variable, value in CONTEXT.items():
        rendered = rendered.replace(variable, value)
    body = json.loads(rendered)
    schema = {"$ref": "#/components/schemas/Error", "components": openapi_document()["components"]}
    assert list(Draft202012Validator(schema).iter_errors(body)) == []
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["details"]["request_id"] == "c0ffee-1"


def test_every_route_takes_every_method_so_api_gateway_hands_wrong_ones_to_the_app(packaged):
    template, _ = packaged
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    import app as application
    from chalicelib.api.fallbacks import CATCH_ALL_DEPTH, METHODS, served_routes

    served = {path for _, path in served_routes(application.app)}
    catch_alls = {"/" + "/".join(f"{{segment{i}}}" for i in range(depth)) for depth in range(CATCH_ALL_DEPTH + 1)}
    assert served | catch_alls == set(paths)
    for path in paths:
        assert set(paths[path]) == {method.lower() for method in METHODS}, path
        for operation in paths[path].values():
            assert operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy", path


def test_the_packaged_app_template_passes_cfn_lint(packaged):
    _, path = packaged
    result = run_cfn_lint(path)
    assert result.returncode == 0, result.stdout + result.stderr
