"""`make package` on the real app: deployable templates that pass cfn-lint, with the merge applied."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from infra_support import ROOT

from devstack.resources import CloudFormationLoader


def test_package_writes_linted_templates_with_partial_batch_failures(tmp_path: Path) -> None:
    out = tmp_path / "build"
    result = subprocess.run([sys.executable, "-m", "devstack.package", "--out", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cfn-lint passed" in result.stdout
    sam = yaml.load((out / "app" / "sam.yaml").read_text(), Loader=CloudFormationLoader)
    resources = sam["Resources"]
    sqs_events = resources["SyncInvoices"]["Properties"]["Events"]["SyncInvoicesSqsEventSource"]["Properties"]
    assert sqs_events["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    stream = resources["HandleTableChanges"]["Properties"]["Events"]["HandleTableChangesDynamodbEventSource"]
    assert stream["Properties"]["BisectBatchOnFunctionError"] is True
    assert (out / "resources.yaml").exists()
