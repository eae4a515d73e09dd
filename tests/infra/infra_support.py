"""Shared by the infrastructure tests: the templates, a fixture Chalice app, and everything packaged and
linted once per test session (`chalice package` and `cfn-lint` take seconds each)."""

from __future__ import annotations

import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devstack.package import MERGE_TEMPLATE, RESOURCES_TEMPLATE, chalice_package, lint, package_app

ROOT = Path(__file__).resolve().parents[2]
__all__ = ["MERGE_TEMPLATE", "RESOURCES_TEMPLATE", "ROOT", "Packaged", "PackagedTemplates", "label",
           "package_everything", "role_statements"]

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



def make_fixture_app(directory: Path, queue_decorator: str) -> Path:
    """The fixture app (the real app's handler names and decorators, nothing else) in `directory`."""
    (directory / ".chalice").mkdir(parents=True)
    (directory / ".chalice" / "config.json").write_text(json.dumps(FIXTURE_CONFIG, indent=2))
    shutil.copy(ROOT / ".chalice" / "policy-deny-all.json", directory / ".chalice")
    (directory / "app.py").write_text(FIXTURE_APP.format(stream=STREAM_PLACEHOLDER, queue=queue_decorator))
    (directory / "requirements.txt").write_text("")
    return directory


@dataclass(frozen=True)
class Packaged:
    """One fixture app packaged by chalice alone (`plain`) and with the merge template (`merged`)."""

    plain: dict[str, Any]
    merged: dict[str, Any]
    merged_path: Path

    def resource(self, logical_id: str) -> dict[str, Any]:
        resource: dict[str, Any] = self.merged["Resources"][logical_id]
        return resource


@dataclass(frozen=True)
class PackagedTemplates:
    """`make package`'s templates for the real app, the fixture app per queue decorator, and what one
    cfn-lint run over the real app's and the queue-name fixture's found in each."""

    app: list[Path]  # build/resources.yaml, build/app/sam.yaml
    fixture: dict[str, Packaged]  # by QUEUE_DECORATORS key
    problems: dict[Path, list[str]]

    def lint_problems(self, template: Path) -> list[str]:
        return self.problems[template.resolve()]


def package_everything(base: Path) -> PackagedTemplates:
    """Every `chalice package` run at once (each is mostly interpreter start-up), then one cfn-lint."""
    jobs: dict[tuple[str, str], tuple[Path, Path, Path | None]] = {}
    for name, decorator in QUEUE_DECORATORS.items():
        app_dir = make_fixture_app(base / name / "app", decorator)
        jobs[(name, "plain")] = (app_dir, base / name / "plain", None)
        jobs[(name, "merged")] = (app_dir, base / name / "merged", MERGE_TEMPLATE)
    with ThreadPoolExecutor(max_workers=len(jobs) + 1) as pool:
        real = pool.submit(package_app, base / "build", "prod")
        written = {key: pool.submit(chalice_package, app_dir, out, "dev", merge)
                   for key, (app_dir, out, merge) in jobs.items()}
        app_templates = real.result()
        paths = {key: future.result() for key, future in written.items()}
    fixture = {
        name: Packaged(plain=json.loads(paths[(name, "plain")].read_text()),
                       merged=yaml.safe_load(paths[(name, "merged")].read_text()),
                       merged_path=paths[(name, "merged")])
        for name in QUEUE_DECORATORS
    }
    # The fixture app with its queue given by ARN merges as the real app does, whose template is linted already.
    problems = lint([*app_templates, fixture["queue-name"].merged_path])
    return PackagedTemplates(app_templates, fixture, problems)


# How the merge template names what a role may touch (see `label`).
TABLE_IMPORT = {"Fn::ImportValue": {"Fn::Sub": "${ResourcesStackName}-TableArn"}}


def label(resource: Any) -> str:
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


def role_statements(sam: dict[str, Any], role: str) -> dict[str, tuple[set[str], set[str]]]:
    """A role's policy statements of a packaged template: {sid: (actions, labelled resources)}."""
    (policy,) = sam["Resources"][role]["Properties"]["Policies"]
    found = {}
    for statement in policy["PolicyDocument"]["Statement"]:
        assert statement["Effect"] == "Allow"
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        found[statement["Sid"]] = (set(statement["Action"]), {label(r) for r in resources})
    return found
