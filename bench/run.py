"""`make bench`: start the local stack, run every benchmark in one go, print a table, write results.json.

The stack is devstack's `LocalStack` on free loopback ports: DynamoDB Local (the table from
infra/resources.yaml, stream included), moto's SQS server (sync queue and DLQ with the
template's redrive policy and visibility), the Stripe emulator and `chalice local`. Every
benchmark runs against that one stack, so ratios compare like with like.

The whole run aims at about 15 minutes on a 2-core machine. The two measures whose set-up
grows with data (the 100,000-event upcoming invoice and the month-end sync) size themselves
to the time left and say so in results.json when they stop short.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .common import Budget, say
from .report import print_table, target_summary, write_json
from .servers import ChildServer, sqs_server

RESULTS = Path(__file__).with_name("results.json")
TOTAL_BUDGET_S = 14.5 * 60
WARM_UP_S = 8
MONTH_END_SHARE = 0.5  # of the time left when the upcoming-invoice ingest starts, kept for the month-end sync
FINAL_RESERVE_S = 15
# The order of the brief, whatever order they run in.
ORDER = ("ingest_throughput", "write_units", "upcoming_invoice", "monthly_totals", "stripe_requests_per_invoice",
         "month_end_sync", "sync_memory", "request_latency", "alert_latency")


def _load() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def _run(name: str, sections: dict[str, Any], measure: Callable[[], dict[str, Any]]) -> None:
    say(f"{name}: start")
    started = time.monotonic()
    try:
        sections[name] = measure()
    except Exception as error:  # one failed benchmark must not cost the others' figures
        traceback.print_exc()
        sections[name] = {"error": f"{type(error).__name__}: {error}"}
    took = time.monotonic() - started
    # Timings depend on what else the machine runs: each section says how busy it was.
    sections[name].update({"seconds": round(took, 1), "load_average_after": _load()})
    say(f"{name}: done in {took:.0f}s (load average {_load()})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--budget", type=float, default=TOTAL_BUDGET_S, help="seconds for the whole run")
    parser.add_argument("--worker-processes", type=int, default=3, help="sync worker processes at month end")
    parser.add_argument("--pollers", type=int, default=3, help="queue pollers (concurrent syncs) per worker process")
    parser.add_argument("--only", nargs="*", help="run only these benchmarks (for development)")
    parser.add_argument("--alert-samples", type=int, default=20, help="alert latency samples (orgs)")
    args = parser.parse_args(argv)

    budget = Budget.of(args.budget)
    started_at = datetime.now(UTC)
    load_at_start = _load()
    from devstack.local_stack import LocalStack

    say("starting the local stack (DynamoDB Local, SQS, Stripe emulator, chalice local)")
    sections: dict[str, Any] = {}
    # moto's SQS server runs in a process of its own: in this one it would share the GIL with the benchmarks.
    with ChildServer(sqs_server) as sqs, LocalStack(
            api=True, table_name="usage-invoicing-bench", sync_queue_visibility_seconds=None, receive_wait_seconds=0,
            sqs_endpoint=sqs.url) as stack:
        from chalicelib.config import settings

        from . import alerts, ingest, latency, month_end, rollups, stripe_requests, sync_memory, upcoming, write_units

        table = settings().table_name
        api_url = stack.api_url or ""
        wanted = set(args.only or [])

        def selected(name: str) -> bool:
            return not wanted or name in wanted

        say(f"stack up: API {api_url}, table {table}; warming DynamoDB Local for {WARM_UP_S}s")
        ingest.warm_up(table, WARM_UP_S)
        if selected("ingest_throughput"):
            _run("ingest_throughput", sections,
                 lambda: ingest.measure(table, api_url, stack.tokens["usage"]))
        if selected("request_latency"):
            _run("request_latency", sections, lambda: latency.measure(api_url, stack.tokens["usage"]))
        if selected("write_units"):
            _run("write_units", sections, lambda: write_units.measure(table))
        if selected("stripe_requests_per_invoice"):
            _run("stripe_requests_per_invoice", sections, lambda: stripe_requests.measure(stack.stripe))
        if selected("sync_memory"):
            _run("sync_memory", sections, lambda: sync_memory.measure(stack.stripe))
        if selected("alert_latency"):
            _run("alert_latency", sections, lambda: alerts.measure(stack, args.alert_samples))
        if selected("monthly_totals"):
            _run("monthly_totals", sections, lambda: rollups.measure(budget, reserve_s=240))
        if selected("upcoming_invoice"):
            reserve = FINAL_RESERVE_S + (MONTH_END_SHARE * budget.remaining() if selected("month_end_sync") else 0)
            _run("upcoming_invoice", sections, lambda: upcoming.measure(budget, reserve_s=reserve))
        if selected("month_end_sync"):
            _run("month_end_sync", sections,
                 lambda: month_end.measure(stack, budget, reserve_s=FINAL_RESERVE_S, processes=args.worker_processes,
                                           runners=args.pollers))
        say("stopping the local stack")

    ordered = {name: sections[name] for name in ORDER if name in sections}
    results: dict[str, Any] = {
        "command": "make bench",
        "measured_at": started_at.isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_at_start": load_at_start,
        "load_average_at_end": _load(),
        "total_seconds": round(args.budget - budget.remaining(), 1),
        **ordered,
        "targets": target_summary(ordered),
    }
    write_json(RESULTS, results)
    print_table(ordered)
    summary = results["targets"]
    print(f"targets met: {len(summary['met'])}, missed: {len(summary['missed'])}"
          + (f" ({', '.join(summary['missed'])})" if summary["missed"] else ""))
    print(f"wrote {RESULTS} in {results['total_seconds']:.0f}s")
    return 1 if summary["not_measured"] else 0


if __name__ == "__main__":
    sys.exit(main())
