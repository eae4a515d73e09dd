"""The demo's scenario, smaller: every invoice synced to Stripe and matched to the cent. It runs as
`make demo` does, but on the test run's DynamoDB Local instead of starting another."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # the local stack, as `make demo` runs it
def test_demo_scenario_reconciles_every_invoice(dynamodb_server):
    result = subprocess.run([sys.executable, "-m", "devstack.demo", "--samples", "12",
                             "--dynamodb-endpoint", dynamodb_server.endpoint_url], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "reconciliation: 3 matched, 0 mismatched, 0 unchecked" in output
    assert "demo passed: 3 of 3 invoices synced to Stripe and matched to the cent" in output
    assert "late=True" in output
