"""What production watches is really emitted: log lines carry the Lambda request id, usage answers become
metrics, and every metric the dashboard and alarms name is one the code emits."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from acceptance_support import post_usage, usage_event

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The service logger's output (JSON lines) for this test."""
    from chalicelib.observability import logger

    handler = logger.registered_handler
    previous = handler.stream
    handler.stream = captured = io.StringIO()
    yield captured
    handler.stream = previous


def _records(captured: io.StringIO, message: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in captured.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("message") == message]


def test_each_request_logs_with_its_own_lambda_request_id(api, org, tokens, pinned_clock, log_lines):
    for n in range(2):
        response = post_usage(api, tokens["usage"], [usage_event(org, f"traced-{n}")])
        assert response.status_code == 200

    first, second = _records(log_lines, "usage recorded")
    assert re.fullmatch(r"[0-9a-f-]{36}", str(first["function_request_id"]))
    assert first["function_request_id"] != second["function_request_id"]
    assert first["function_name"] == "api_handler"


def test_scheduled_functions_log_with_the_request_id_too(api, log_lines):
    response = api.lambda_.invoke("canary", api.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))
    assert "pending_syncs" in response.payload
    assert all(line.get("function_name") == "canary" for line in _records(log_lines, "canary"))


def test_usage_answers_are_emitted_as_metrics(api, org, tokens, pinned_clock, capsys):
    capsys.readouterr()
    post_usage(api, tokens["usage"], [usage_event(org, "m-1"), usage_event(org, "m-1"),
                                      usage_event(org, "m-2", meter="no_such_meter")])

    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    values = {key: document[key] for document in documents for key in document
              if key.startswith("UsageEvents")}
    assert values == {"UsageEventsAccepted": [1.0], "UsageEventsDuplicate": [1.0], "UsageEventsRejected": [1.0]}


def _emitted_names() -> set[str]:
    """Metric names the code passes to Powertools' add_metric."""
    names = set()
    for path in (ROOT / "chalicelib").rglob("*.py"):
        names |= set(re.findall(r'add_metric\(name="(\w+)"', path.read_text()))
    from chalicelib.observability import INGESTION_METRICS

    return names | set(INGESTION_METRICS.values())


def test_every_metric_the_dashboard_and_alarms_read_from_the_service_is_emitted():
    from devstack.template import load_template

    template = load_template(ROOT / "infra" / "resources.yaml")
    dashboard = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    body = json.loads(dashboard if isinstance(dashboard, str) else dashboard[0])
    read = set()
    for widget in body["widgets"]:
        for metric in widget["properties"].get("metrics", []):
            if metric[0] == "UsageInvoicing":
                read.add(metric[1])
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::CloudWatch::Alarm" and resource["Properties"].get("Namespace") == "UsageInvoicing":
            read.add(resource["Properties"]["MetricName"])
    assert {"InvoiceSynced", "FinalizeToSyncedSeconds", "InvoiceMismatch", "UsageEventsRejected",
            "OldestPendingSyncSeconds", "CanaryHealthy"} <= read
    assert read <= _emitted_names(), read - _emitted_names()
