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
    assert "reconciliation: 4 matched, 0 mismatched, 0 unchecked" in output
    assert "demo passed: 4 of 4 invoices synced to Stripe and matched to the cent" in output
    assert "late=True" in output
    assert "acme upgraded its support plan" in output
    assert "acme's support upgrade: credited and charged to the second" in output
    assert "initech's promotion spent over two months" in output
