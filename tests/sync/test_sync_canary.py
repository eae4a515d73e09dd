"""The canary against the Stripe emulator through the real stream → queue → worker path: today's probe is
finalized, synced with the test-mode key, checked against Stripe, voided; a probe that is not synced in time
reports unhealthy, which is what the alarm watches."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support.environment import EnvironmentOverrides
from sync_support import stored, stripe_copies, wait_for

LIVE_KEY = "sk_live_must_never_reach_the_canary"  # the emulator refuses it, as live Stripe would in tests


@pytest.fixture
def canary_env(sync_env: Any, set_env: EnvironmentOverrides) -> str:
    base = f"canary-{uuid.uuid4().hex[:8]}"
    set_env(CANARY_ORG=base, STRIPE_CANARY_API_KEY="sk_test_canary", STRIPE_API_KEY=LIVE_KEY)
    return base


def emitted(text: str) -> dict[str, list[float]]:
    """The values of every embedded metric printed (CloudWatch EMF documents, one JSON per line)."""
    values: dict[str, list[float]] = defaultdict(list)
    for line in text.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        for definition in document["_aws"]["CloudWatchMetrics"]:
            for metric in definition["Metrics"]:
                value = document[metric["Name"]]
                values[metric["Name"]] += value if isinstance(value, list) else [value]
    return values


def _run(now: datetime, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], dict[str, list[float]]]:
    from chalicelib.config import settings
    from chalicelib.services.canary import scheduled_checks

    capsys.readouterr()
    result = scheduled_checks(now, settings())
    return result, emitted(capsys.readouterr().out)


def _sync_state(org: str, invoice_id: str) -> str:
    return str(stored(org, invoice_id).sync.state.value)


def test_a_probe_is_finalized_synced_with_the_test_key_verified_and_voided(sync_env, runner, canary_env, capsys):
    now = datetime.now(UTC)

    started, metrics = _run(now, capsys)

    probe = started["canary"]
    assert probe["outcome"] == "started" and probe["org"] == f"{canary_env}-{now:%Y%m%d}"
    assert metrics["CanaryHealthy"] == [1]
    assert "PendingSyncs" in metrics and "OldestPendingSyncSeconds" in metrics
    org, invoice_id = probe["org"], probe["invoice_id"]
    invoice = stored(org, invoice_id)
    assert invoice.status.value == "finalized" and invoice.total_cents == 1

    wait_for(lambda: _sync_state(org, invoice_id) == "synced", 30,
             lambda: runner.poll_once(sqs_wait_seconds=1), "the probe's sync")
    checked, metrics = _run(datetime.now(UTC), capsys)

    assert checked["canary"]["outcome"] == "healthy", checked
    assert metrics["CanaryHealthy"] == [1] and len(metrics["CanarySyncSeconds"]) == 1
    assert stored(org, invoice_id).status.value == "void"
    wait_for(lambda: _sync_state(org, invoice_id) == "synced", 30,
             lambda: runner.poll_once(sqs_wait_seconds=1), "the probe's void")
    assert [(c["status"], c["total"]) for c in stripe_copies(sync_env.emulator, org)] == [("void", 1)]
    assert sync_env.queues.dead_letters() == []

    again, metrics = _run(datetime.now(UTC), capsys)
    assert again["canary"]["outcome"] == "healthy" and metrics["CanaryHealthy"] == [1]


def test_a_probe_not_synced_within_the_deadline_reports_unhealthy(sync_env, canary_env, capsys):
    from chalicelib.services.canary import DEADLINE

    now = datetime.now(UTC)
    started, _ = _run(now, capsys)  # no worker runs: the sync never happens

    waiting, metrics = _run(now + DEADLINE / 2, capsys)
    assert waiting["canary"]["outcome"] == "waiting" and metrics["CanaryHealthy"] == [1]

    late, metrics = _run(now + DEADLINE + timedelta(seconds=1), capsys)
    assert late["canary"]["outcome"] == "late" and metrics["CanaryHealthy"] == [0]
    assert metrics["OldestPendingSyncSeconds"][0] >= DEADLINE.total_seconds()


def test_a_probe_whose_stripe_copy_differs_reports_mismatched(sync_env, runner, canary_env, capsys):
    from chalicelib.storage import keys
    from chalicelib.storage.models import InvoiceItem

    started, _ = _run(datetime.now(UTC), capsys)
    org, invoice_id = started["canary"]["org"], started["canary"]["invoice_id"]
    wait_for(lambda: _sync_state(org, invoice_id) == "synced", 30,
             lambda: runner.poll_once(sqs_wait_seconds=1), "the probe's sync")
    invoice = stored(org, invoice_id)
    drifted = InvoiceItem(keys.org_pk(org), keys.invoice_sk(invoice_id))  # ours drifts from Stripe's
    drifted.update(actions=[InvoiceItem.total_cents.set(invoice.total_cents + 1)])

    checked, metrics = _run(datetime.now(UTC), capsys)

    assert checked["canary"]["outcome"] == "mismatched" and metrics["CanaryHealthy"] == [0]
    assert stored(org, invoice_id).status.value == "finalized"  # left for on-call to look at, not voided


def test_the_worker_never_syncs_a_canary_org_with_a_live_key(sync_env, runner, canary_env, monkeypatch, capsys):
    from chalicelib.config import reload_settings

    started, _ = _run(datetime.now(UTC), capsys)
    monkeypatch.delenv("STRIPE_CANARY_API_KEY")
    reload_settings()
    org, invoice_id = started["canary"]["org"], started["canary"]["invoice_id"]

    wait_for(lambda: bool(sync_env.queues.dead_letters()), 30, lambda: runner.poll_once(sqs_wait_seconds=1),
             "the probe's message in the DLQ")

    assert _sync_state(org, invoice_id) == "pending"
    assert stripe_copies(sync_env.emulator, org) == []
    monkeypatch.undo()
    reload_settings()
