"""The HTTP admin interface and the command-line entry point."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys

import pytest
import requests
import stripe
from emulator_support import lines, until_rate_limited
from support.waiting import wait_for

from devstack.stripe_emulator import StripeEmulator

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _admin(emulator, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{emulator.base_url}/_emulator{path}", timeout=5,
                            **kwargs)


def test_state_dump_and_request_counts(client, emulator, customer, draft):
    client.v1.invoices.add_lines(draft.id, params={"lines": lines(3)})
    state = _admin(emulator, "GET", "/state").json()
    assert [c["id"] for c in state["customers"]] == [customer.id]
    (invoice,) = state["invoices"]
    assert invoice["total"] == 300 and len(invoice["lines"]["data"]) == 3
    assert not any(key.startswith("_") for key in invoice)

    counts = _admin(emulator, "GET", "/requests?log=2").json()
    assert counts["by_invoice"][draft.id] == 2  # create + add_lines
    assert [e["endpoint"] for e in counts["log"]] == [
        "POST /v1/invoices", "POST /v1/invoices/{invoice}/add_lines"]
    assert _admin(emulator, "POST", "/requests/reset").json()["total"] == 0


def test_faults_over_http(client, emulator):
    added = _admin(emulator, "POST", "/faults/fail_next",
                   json={"match": "GET /v1/customers", "count": 1, "kind": "error"})
    assert added.status_code == 200
    with pytest.raises(stripe.APIError):
        client.v1.customers.list()
    client.v1.customers.list()

    rule = _admin(emulator, "POST", "/faults", json={"match": "*", "error_rate": 1.0}).json()
    assert [r["id"] for r in _admin(emulator, "GET", "/faults").json()["rules"]] == [rule["id"]]
    with pytest.raises(stripe.APIError):
        client.v1.customers.list()
    assert _admin(emulator, "DELETE", f"/faults/{rule['id']}").json()["removed"] is True
    client.v1.customers.list()
    bad = _admin(emulator, "POST", "/faults", json={"match": "*", "error_rate": 2})
    assert bad.status_code == 400


def test_rate_limits_keys_and_reset_over_http(client, emulator):
    limits = _admin(emulator, "POST", "/rate_limits", json={"per_endpoint_per_second": 1})
    assert limits.json()["per_endpoint_per_second"] == 1
    until_rate_limited(client.v1.customers.list)
    _admin(emulator, "POST", "/rate_limits", json={"per_endpoint_per_second": None})
    client.v1.customers.list()

    first = client.v1.customers.create(options={"idempotency_key": "k"})
    assert _admin(emulator, "GET", "/idempotency").json()["keys"] == 1
    assert _admin(emulator, "POST", "/idempotency/forget").json()["forgotten"] == 1
    assert client.v1.customers.create(options={"idempotency_key": "k"}).id != first.id

    _admin(emulator, "POST", "/reset")
    assert _admin(emulator, "GET", "/state").json()["customers"] == []
    assert emulator.limiter.describe()["per_endpoint_per_second"] == 25


def test_payment_failed_over_http(client, emulator, draft):
    client.v1.invoices.add_lines(draft.id, params={"lines": lines(1)})
    client.v1.invoices.finalize_invoice(draft.id)
    response = _admin(emulator, "POST", f"/invoices/{draft.id}/payment_failed")
    assert response.status_code == 200 and response.json()["attempt_count"] == 1
    events = _admin(emulator, "GET", "/events?type=invoice.payment_failed").json()["data"]
    assert [e["data"]["object"]["id"] for e in events] == [draft.id]
    missing = _admin(emulator, "POST", "/invoices/in_missing/payment_failed")
    assert missing.status_code == 404


def test_refuses_to_listen_beyond_loopback():
    with pytest.raises(ValueError):
        StripeEmulator().start(host="0.0.0.0")


@pytest.mark.slow  # a process
def test_command_line_runs_in_foreground_and_stops_on_sigterm():
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.stripe_emulator", "--port", "0",
         "--webhook-url", "http://127.0.0.1:9/hook", "--webhook-secret", "whsec_cli"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        banner = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in banner
        url = banner.split("listening on ")[1].split()[0]
        client = stripe.StripeClient("sk_test_cli", base_addresses={"api": url})
        assert client.v1.customers.create().id.startswith("cus_")
        assert wait_for(lambda: requests.get(f"{url}/_emulator/health", timeout=5).ok)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
