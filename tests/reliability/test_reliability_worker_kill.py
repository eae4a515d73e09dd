"""Sync workers killed for real: a worker process gets SIGKILL while it waits on Stripe in the middle of a
sync (its lease left behind, its messages in flight, a Stripe draft half filled), several times over. A
fresh worker then finishes the job: every invoice synced exactly once, matching Stripe to the cent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from reliability_support import report, running_stack
from support.scale import sized
from support.waiting import wait_for

pytestmark = pytest.mark.slow  # about a minute at full size (`make reliability`); less in `make test`

INVOICES = sized(reduced=8, full=12)
LINES = 3
KILLS = sized(reduced=2, full=3)
LEASE_SECONDS = 5  # the killed workers' leases; production's 2 minutes would only make the test wait
VISIBILITY_SECONDS = 6  # a killed worker's messages come back after this
SLOW_MS = 3_000  # add_lines and finalize: long enough to see a worker wait on Stripe, and kill it then
WAIT_S = 120  # for any one stage; each takes seconds
PACE_S = 0.2  # between checks of a condition nothing here can poll for
ROOT = Path(__file__).resolve().parents[2]

# A worker as its own OS process: the app's queue handler driven by the event runner (no stream), with
# the lease shortened as above. It runs until it is killed.
WORKER = f"""
import sys, time
from datetime import timedelta
sys.path.insert(0, {str(ROOT)!r})
from chalicelib.services import sync
sync.LEASE_TTL = timedelta(seconds={LEASE_SECONDS})
from devstack.event_runner import EventRunner, load_app_handlers
runner = EventRunner.from_environment(None, load_app_handlers("app").sqs_handler, sqs_wait_seconds=1)
runner.start()
while runner.running:
    time.sleep(0.5)
"""


@pytest.fixture(scope="module")
def kill_stack(local_aws: Any) -> Any:
    with running_stack(local_aws, api=False, sync_queue_visibility_seconds=VISIBILITY_SECONDS) as stack:
        yield stack


def finalized_invoices(now: datetime) -> list[tuple[str, str]]:
    from chalicelib.config import settings
    from chalicelib.domain.invoice import invoice_id_for
    from chalicelib.domain.periods import Period
    from chalicelib.services.invoices import InvoiceService
    from chalicelib.services.usage import UsageEvent, record_usage
    from chalicelib.storage.orgs import OrgRepository

    orgs = [f"killed-{now:%H%M%S}-{index:02d}" for index in range(INVOICES)]
    for org in orgs:
        OrgRepository().upsert(org, f"Killed {org}", f"{org}@example.com", "usd", now)
    events = [UsageEvent(f"e{line}", org, f"app{line}", "egress", Decimal(11 + 5 * line) / 4,
                         ("iad", "fra", "nrt")[line], {}, now) for org in orgs for line in range(LINES)]
    assert {r.status for r in record_usage(events, now, settings())} == {"accepted"}
    return [(org, InvoiceService().finalize(org, invoice_id_for(Period.of(now)), now).id) for org in orgs]


def test_workers_killed_mid_sync_leave_nothing_lost_or_doubled(kill_stack, tmp_path):
    import app
    from chalicelib.storage.invoices import InvoiceRepository
    from devstack.event_runner import EventRunner

    stack, emulator = kill_stack, kill_stack.stripe
    env = {**os.environ, **stack.env, "PYTHONUNBUFFERED": "1"}
    made = finalized_invoices(datetime.now(UTC))

    stream = EventRunner(app.handle_table_changes, None, stream_arn=stack.resources.stream_arn,
                         dynamodb_streams_endpoint=stack.env["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"],
                         region=stack.env["AWS_DEFAULT_REGION"], starting_position="TRIM_HORIZON")
    repo = InvoiceRepository()
    pending = lambda: sum(1 for _ in repo.by_state("sync_pending"))  # noqa: E731

    def add_lines_seen() -> int:
        return sum(n for endpoint, n in emulator.request_counts()["by_endpoint"].items() if "add_lines" in endpoint)

    sqs = boto3.client("sqs", endpoint_url=stack.env["AWS_ENDPOINT_URL_SQS"],
                       region_name=stack.env["AWS_DEFAULT_REGION"])

    def queued() -> int:
        attributes = sqs.get_queue_attributes(QueueUrl=stack.resources.queue_url,
                                              AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    wait_for(lambda: queued() >= INVOICES, WAIT_S, stream.poll_once, "the stream to queue every invoice")
    # Stripe applies a request even if the caller has gone: a worker killed while Stripe holds its finalize
    # (slowed down, so there is time to see it) leaves an invoice finalized in Stripe and pending here.
    emulator.add_fault("POST /v1/invoices/*/add_lines", latency_ms=SLOW_MS)
    emulator.add_fault("POST /v1/invoices/*/finalize", latency_ms=SLOW_MS)

    def finalizing() -> set[str]:
        """Finalize requests Stripe holds and has not answered yet (each carries its idempotency key,
        `invoice:<org>:<id>:finalize:advance`)."""
        return {key for key in emulator.idempotency_keys_in_flight() if ":finalize" in key}

    killed = []
    for _ in range(KILLS):
        earlier = finalizing()
        log = tmp_path / f"worker-{len(killed)}.log"
        with log.open("wb") as output:
            worker = subprocess.Popen([sys.executable, "-c", WORKER], env=env, cwd=ROOT, stdout=output,
                                      stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: finalizing() - earlier, WAIT_S, lambda: time.sleep(PACE_S),  # noqa: B023
                     "a worker to wait on Stripe's finalize",
                     give_up=lambda: None if worker.poll() is None else  # noqa: B023
                     f"the worker exited with {worker.returncode}: {log.read_text()[-3000:]}")  # noqa: B023
        finally:
            worker.send_signal(signal.SIGKILL)
            killed.append(worker.wait(timeout=30))
    emulator.clear_faults()
    left_mid_sync = pending()

    def finalized_in_stripe_only() -> int:
        """Invoices Stripe finalized for a worker that died waiting for the answer: ours still pending."""
        open_ids = {i["id"] for i in emulator.state()["invoices"] if i["status"] == "open"}
        return sum(1 for invoice in repo.by_state("sync_pending") if invoice.sync.stripe_invoice_id in open_ids)

    wait_for(lambda: finalized_in_stripe_only() >= 1, WAIT_S, lambda: time.sleep(PACE_S),
             "a dead worker's finalize to land in Stripe")

    survivor = EventRunner(None, app.sync_invoices, queue_url=stack.resources.queue_url,
                           queue_arn=stack.resources.queue_arn, sqs_endpoint=stack.env["AWS_ENDPOINT_URL_SQS"],
                           region=stack.env["AWS_DEFAULT_REGION"], sqs_wait_seconds=1)
    wait_for(lambda: pending() == 0, WAIT_S, lambda: survivor.poll_once() + stream.poll_once(),
             "the survivor to sync every invoice")
    survivor.stop()
    stream.stop()
    report(f"worker kill: {KILLS} workers killed with SIGKILL mid-sync, {left_mid_sync} of {INVOICES} invoices "
           "left pending (at least one finalized in Stripe behind a dead worker), all synced by a fresh worker; "
           f"add_lines requests {add_lines_seen()}")

    assert killed == [-signal.SIGKILL] * KILLS
    assert left_mid_sync >= 1  # the kills did interrupt syncs
    state = emulator.state()
    copies = Counter((i["metadata"].get("org"), i["metadata"].get("invoice_id")) for i in state["invoices"])
    assert copies == Counter({pair: 1 for pair in made})
    customers = Counter(c["metadata"].get("org") for c in state["customers"])
    assert customers == Counter({org: 1 for org, _ in made})
    by_id = {i["id"]: i for i in state["invoices"]}
    for org, invoice_id in made:
        ours = repo.get(org, invoice_id)
        assert ours is not None and ours.sync.state.value == "synced", (org, invoice_id)
        copy = by_id[ours.sync.stripe_invoice_id]
        assert copy["status"] == "open" and copy["total"] == ours.total_cents
        lines = sorted((line["metadata"]["line_key"], line["amount"]) for line in copy["lines"]["data"])
        assert lines == sorted((line.id, line.amount_cents) for line in repo.lines(org, invoice_id))
