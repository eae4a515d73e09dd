"""Longest modules first.

`make test` runs the suite on three workers (pytest-xdist, `--dist loadscope`), which take whole modules in
collection order; starting with the modules that take longest lets the workers finish at about the same
time instead of one waiting on another's last long module. The Makefile passes `--no-loadscope-reorder`:
otherwise pytest-xdist orders modules by their number of tests, which puts the longest ones, single tests,
last. Serial runs are unaffected but for the order.
"""

from __future__ import annotations

import pytest

# Longest first, as measured (each module's test time, the mean of two `make test` runs); a module not named
# keeps its place after these.
LONGEST_FIRST = (
    "tests/reliability/test_reliability_sync_chaos.py",
    "tests/reliability/test_reliability_security.py",
    "tests/e2e/test_demo_scenario.py",
    "tests/infra/test_infra_chalice_merge.py",
    "tests/reliability/test_reliability_worker_kill.py",
    "tests/reliability/test_reliability_load.py",
    "tests/devstack/test_devstack_stack.py",
    "tests/oncall/test_oncall_dlq.py",
    "tests/integration/test_integration_finalize_race.py",
    "tests/integration/test_integration_usage_api.py",
    "tests/notify/test_notify_webhooks.py",
    "tests/sync/test_sync_duplicates_and_replays.py",
    "tests/integration/test_integration_usage_idempotency.py",
    "tests/integration/test_integration_hostile_input.py",
    "tests/notify/test_notify_budgets.py",
    "tests/sync/test_sync_crash_recovery.py",
    "tests/integration/test_integration_hostile_routes.py",
    "tests/integration/test_integration_upcoming_invoice.py",
    "tests/oncall/test_oncall_under_pressure.py",
    "tests/reliability/test_reliability_aggregation_properties.py",
    "tests/notify/test_notify_collection.py",
    "tests/sync/test_sync_recurring_and_credits.py",
    "tests/reliability/test_reliability_api_schema.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {module: index for index, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
