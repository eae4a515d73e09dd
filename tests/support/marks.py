"""Which tests are slow: every test that starts a process or a server, directly or through a fixture.

`make test-fast` (`pytest -m "not slow"`) leaves them out. A test that starts one itself (a subprocess, a
`StripeEmulator`, a `LocalStack`) carries `@pytest.mark.slow`; a test that gets one from a fixture below is
marked here, so no test can forget it.
"""

from __future__ import annotations

import pytest

# Fixtures that start a process or a server (or stand on one that does: each test's fixture closure holds
# every fixture it depends on, so the ones at the bottom suffice).
STARTS_A_PROCESS_OR_SERVER = frozenset({
    "dynamodb_server",  # DynamoDB Local, a JVM
    "sqs_server",  # moto's SQS server
    "stripe_server",  # the Stripe emulator
    "packaged_templates",  # `chalice package` and `cfn-lint`
    "http_stack",  # `chalice local`
    "app_url",  # the app behind chalice's local HTTP server (the browser tests)
    "browser",  # chromium through its chromedriver
    "receiver",  # a customer's (or Stripe's) webhook receiver, an HTTP server
})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if STARTS_A_PROCESS_OR_SERVER.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
