"""`make package` on the real app: deployable templates that pass cfn-lint, with the merge applied."""

from __future__ import annotations

from infra_support import RESOURCES_TEMPLATE, PackagedTemplates

from devstack.template import load_template


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
