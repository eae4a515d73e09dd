"""`invoicing-admin subscriptions …` and `invoicing-admin credits …` against DynamoDB Local: the same rules as the
API (idempotent by id, backdating bounded), and the open invoice carries the plan as soon as the command returns."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest


@pytest.fixture
def admin(capsys: pytest.CaptureFixture[str], local_aws: Any, pinned_clock: Any) -> Any:
    from chalicelib.admin.cli import main

    pinned_clock.now = datetime(2026, 11, 20, 15, tzinfo=UTC)

    def run(*argv: str) -> tuple[int, Any]:
        capsys.readouterr()
        code = main([*argv, "--json"])
        out = capsys.readouterr().out
        return code, json.loads(out) if out.strip() else None

    return run


def lines_of(org: str, invoice_id: str) -> dict[str, int]:
    from chalicelib.storage.invoices import InvoiceRepository

    return {line.description: line.amount_cents for line in InvoiceRepository().lines(org, invoice_id)}


def test_subscribe_upgrade_and_cancel_from_the_shell_put_prorated_lines_on_the_open_invoice(admin, org):
    code, started = admin("subscriptions", "change", org, "support-standard", "--at", "2026-11-01T00:00:00Z",
                          "--change-id", "start")
    assert code == 0 and started["created"] and started["subscriptions"][0]["plan"] == "support-standard"
    assert admin("subscriptions", "change", org, "support-standard", "--at", "2026-11-01T00:00:00Z",
                 "--change-id", "start")[1]["created"] is False  # retried with the same id: nothing changes

    code, upgraded = admin("subscriptions", "change", org, "support-premium", "--at", "2026-11-16T00:00:00Z")
    assert code == 0 and upgraded["change_id"].startswith("cli-")
    assert lines_of(org, "inv_202611") == {
        "Support plan: standard · 2026-11": 2900,
        "Unused time on Support plan: standard from 2026-11-16 00:00:00 UTC (prorated)": -1450,
        "Support plan: premium from 2026-11-16 00:00:00 UTC (prorated)": 9950,
    }

    code, cancelled = admin("subscriptions", "cancel", org, "support", "--at", "2026-11-21T00:00:00Z")
    assert code == 0 and [s["plan"] for s in cancelled["subscriptions"]] == ["support-premium"]  # until tomorrow
    # 15 days of standard (half of 2900), then premium from the 16th to the 21st: 13267 - 9950 of 19900.
    assert sum(lines_of(org, "inv_202611").values()) == 1450 + (13267 - 9950)
    code, shown = admin("subscriptions", "show", org)
    assert code == 0 and [c["plan"] for c in shown["changes"]] == ["support-standard", "support-premium", None]


def test_bad_changes_and_unknown_orgs_fail_with_exit_code_1_and_change_nothing(admin, org):
    code, answer = admin("subscriptions", "change", org, "support-gold")
    assert code == 1 and answer["error"]["code"] == "invalid_request"
    code, answer = admin("subscriptions", "change", org, "support-standard", "--at", "2026-09-01T00:00:00Z")
    assert code == 1
    code, answer = admin("subscriptions", "show", "no-such-org")
    assert code == 1 and answer["error"]["code"] == "not_found"
    assert admin("subscriptions", "show", org)[1]["changes"] == []
    with pytest.raises(SystemExit):
        admin("subscriptions", "change", org, "support-standard", "--at", "yesterday")


def test_grant_credit_from_the_shell_and_read_the_balance_and_ledger(admin, org):
    code, granted = admin("credits", "grant", org, "2500", "--reason", "goodwill", "--description", "outage",
                          "--expires-at", "2027-01-01T00:00:00Z", "--client-id", "outage-1")
    assert code == 0 and granted["created"] and granted["remaining"]["cents"] == 2500
    assert admin("credits", "grant", org, "2500", "--reason", "goodwill", "--description", "outage",
                 "--expires-at", "2027-01-01T00:00:00Z", "--client-id", "outage-1")[1]["created"] is False
    code, conflict = admin("credits", "grant", org, "9999", "--reason", "goodwill", "--description", "outage",
                           "--client-id", "outage-1")
    assert code == 1 and conflict["error"]["code"] == "conflict"
    assert admin("credits", "grant", org, "0", "--reason", "goodwill", "--description", "x")[0] == 1
    with pytest.raises(SystemExit):
        admin("credits", "grant", org, "100", "--reason", "carryover", "--description", "x")

    code, shown = admin("credits", "show", org)
    assert code == 0 and shown["balance"]["cents"] == 2500
    assert [(e["movement"], e["amount"]["cents"]) for e in shown["ledger"]] == [("grant", 2500)]
