"""Longest modules first.

`make test` runs the suite on three workers (pytest-xdist, `--dist loadscope`), which take whole modules in
collection order; starting with the modules that take longest lets the workers finish at about the same
time instead of one waiting on another's last long module. The Makefile passes `--no-loadscope-reorder`:
otherwise pytest-xdist orders modules by their number of tests, which puts the longest ones, single tests,
last. Serial runs are unaffected but for the order.
"""

from __future__ import annotations

import pytest

# Longest first, as measured with `pytest --durations`; a module not named keeps its place after these.
LONGEST_FIRST = (
    "tests/reliability/test_reliability_sync_chaos.py",
    "tests/e2e/test_demo_scenario.py",
    "tests/reliability/test_reliability_worker_kill.py",
    "tests/reliability/test_reliability_load.py",
    "tests/devstack/test_devstack_stack.py",
    "tests/notify/test_notify_webhooks.py",
    "tests/sync/test_sync_chaos_and_dead_letters.py",
    "tests/sync/test_sync_end_to_end.py",
    "tests/integration/test_integration_finalize_race.py",
    "tests/oncall/test_oncall_dlq.py",
    "tests/integration/test_integration_hostile_input.py",
    "tests/infra/test_infra_chalice_merge.py",
    "tests/notify/test_notify_collection.py",
    "tests/reliability/test_reliability_api_schema.py",
    "tests/reliability/test_reliability_aggregation_properties.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {module: index for index, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
