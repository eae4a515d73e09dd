"""Month-end: sync a few thousand finalized invoices to Stripe through the real queue path.

Set-up, in waves until the invoice count or the time budget is reached, spread over a few
processes: orgs, usage (three lines per invoice) and `InvoiceService.finalize` for each
invoice. Meanwhile an event runner (in a process of its own, as the Lambda it stands for)
delivers the table's stream to the app's `handle_table_changes`, which puts one message
per finalized invoice on the SQS sync queue, as in production.

Timed part: worker processes, each running a few event runners that poll the queue and call
the app's `sync_invoices` (like concurrent Lambda invocations of the SQS event source),
against a Stripe emulator in its own process (Stripe is another machine) with the account
limit of 100 requests/s and 25/s per endpoint. Workers are started and warmed first; the
clock runs from releasing them until the queue holds nothing, visible or in flight (a
message backed off after a 429 counts until it is done). The achieved rate is the requests
Stripe admitted per second over that time, as a share of the 100/s limit; the DLQ is
counted afterwards.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from .common import Budget, chunks, create_orgs, egress_events, figure, in_threads, record, rounded, run_id, say
from .procs import ProcessPool, spawn_context, start_process, wait_for_stop
from .servers import ChildServer, EmulatorAdmin, stripe_server

TARGET_INVOICES = 2_000
WAVE = 250
LINES_PER_INVOICE = 3
SETUP_PROCESSES = 3
GLOBAL_LIMIT = 100
ENDPOINT_LIMIT = 25
TARGET_SHARE = 0.8
ESTIMATED_RATE = 30  # requests/s assumed when sizing the set-up to the time left (what a busy 2-core machine does)
REQUESTS_PER_INVOICE = 6  # first invoice of an org: find customer, create it, find invoice, create, add lines, finalize


# -- in child processes ----------------------------------------------------------------------

def setup_slice(prefix: str, first: int, count: int) -> list[tuple[str, str]]:
    """Orgs first..first+count-1 of a wave, each with one finalized invoice of LINES_PER_INVOICE lines."""
    from chalicelib.domain.invoice import invoice_id_for
    from chalicelib.domain.periods import Period
    from chalicelib.services.invoices import InvoiceService

    orgs = create_orgs(prefix, count, threads=2, first=first)
    events = [e for org in orgs for e in egress_events(org, range(LINES_PER_INVOICE), LINES_PER_INVOICE, "m")]
    record(events, 500)
    invoice_id = invoice_id_for(Period.of(datetime.now(UTC)))
    service = InvoiceService()

    def finalize(group: list[str]) -> int:
        for org in group:
            service.finalize(org, invoice_id, datetime.now(UTC))
        return len(group)

    in_threads(finalize, [list(group) for group in chunks(orgs, max(1, (len(orgs) + 1) // 2))], 2)
    return [(org, invoice_id) for org in orgs]


def sync_worker(go: Any, stop: Any, results: Any, runners: int, stripe_api_base: str) -> None:
    """`runners` event runners polling the sync queue with the app's handler, from `go` until `stop`."""
    from chalicelib.config import reload_settings
    from chalicelib.services.bootstrap import bind_storage
    from devstack.event_runner import EventRunner, load_app_handlers

    os.environ["STRIPE_API_BASE"] = stripe_api_base  # the month-end emulator, in its own process
    bind_storage(reload_settings())
    handler = load_app_handlers("app").sqs_handler
    polling = [EventRunner.from_environment(None, handler, sqs_batch_size=10, sqs_wait_seconds=0)
               for _ in range(runners)]
    _warm()
    for runner in polling:
        runner.sqs.get_queue_attributes(QueueUrl=runner.queue_url, AttributeNames=["QueueArn"])  # client ready
    results.put({"ready": 1})
    go.wait(600)
    for runner in polling:
        runner.start()
    wait_for_stop(stop, 3600)
    for runner in polling:
        runner.stop()
    totals: dict[str, int] = {}
    for runner in polling:
        for key, value in runner.stats.items():
            totals[key] = totals.get(key, 0) + value
    results.put(totals)


def stream_worker(stop: Any, results: Any) -> None:
    """The table's stream to the app's `handle_table_changes`, from the stream's tip, until `stop` is set.

    Starting at the tip keeps earlier benchmarks' records out; shards that appear later are
    read from their start.
    """
    from devstack.event_runner import EventRunner, load_app_handlers

    runner = EventRunner.from_environment(load_app_handlers("app").stream_handler, None,
                                          starting_position="LATEST", batch_size=100)
    runner.poll_once()  # pins every open shard's iterator at its tip
    runner.starting_position = "TRIM_HORIZON"
    runner.start()
    results.put({"ready": 1})
    wait_for_stop(stop, 3600)
    runner.stop()
    results.put(dict(runner.stats))


def _warm() -> None:
    """What a warm Lambda has already done: imports, a Stripe call, a DynamoDB call (before the counts reset)."""
    from chalicelib.services.sync_worker import default_gateway
    from chalicelib.storage.invoices import InvoiceRepository

    default_gateway().find_customer("bench-warm-up", "warm-up@example.com")
    InvoiceRepository().get("bench-warm-up", "inv_190001")


# -- in this process ---------------------------------------------------------------------------

def _queue_depth(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
             "ApproximateNumberOfMessagesDelayed"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in names)


def _visible(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def _sync_estimate(invoices: int) -> float:
    return invoices * REQUESTS_PER_INVOICE / ESTIMATED_RATE + 30


def _synced(invoices: list[tuple[str, str]]) -> int:
    from chalicelib.storage import keys
    from chalicelib.storage.models import InvoiceItem

    wanted = [(keys.org_pk(org), keys.invoice_sk(invoice_id)) for org, invoice_id in invoices]
    return sum(item.sync_state == "synced" for item in InvoiceItem.batch_get(wanted))


def _log_counts(log_dir: Path) -> tuple[dict[str, int], list[str]]:
    """Retries and permanent failures the workers logged, and the last line of each traceback."""
    counts = {"sync will retry": 0, "sync failed permanently": 0}
    errors: list[str] = []
    for path in sorted(log_dir.glob("*.log")):
        lines = path.read_text(errors="replace").splitlines()
        for phrase in counts:
            counts[phrase] += sum(f'"message":"{phrase}"' in line for line in lines)
        for index, line in enumerate(lines):
            if line.startswith("Traceback"):
                end = next((j for j in range(index + 1, len(lines)) if not lines[j].startswith((" ", "\t"))),
                           len(lines) - 1)
                errors.append(f"{path.stem}: {lines[end][:300]}")
    return counts, errors


def _set_up(budget: Budget, reserve_s: float, log_dir: Path) -> tuple[list[tuple[str, str]], float]:
    invoices: list[tuple[str, str]] = []
    prefix = f"bench-me-{run_id()}"
    started = time.monotonic()
    with ProcessPool(SETUP_PROCESSES, log_dir) as pool:
        wave_seconds = 0.0
        while len(invoices) < TARGET_INVOICES:
            size = min(WAVE, TARGET_INVOICES - len(invoices))
            if invoices and budget.remaining() < wave_seconds + _sync_estimate(len(invoices) + size) + reserve_s:
                say(f"  month-end: set-up stops at {len(invoices):,} invoices to stay within the time budget")
                break
            wave_started = time.monotonic()
            per = -(-size // SETUP_PROCESSES)
            slices = [(prefix, len(invoices) + start, min(per, size - start)) for start in range(0, size, per)]
            for part in pool.starmap(setup_slice, slices):
                invoices += part
            wave_seconds = time.monotonic() - wave_started
            say(f"  month-end: {len(invoices):,} invoices finalized ({wave_seconds:.0f}s for the last {size})")
    return invoices, time.monotonic() - started


def measure(stack: Any, budget: Budget, reserve_s: float, processes: int, runners: int) -> dict[str, Any]:
    with ChildServer(stripe_server, f"{stack.api_url}/v1/stripe/webhook", stack.env["STRIPE_WEBHOOK_SECRET"]) as stripe:
        return _measure(stack, budget, reserve_s, processes, runners, stripe.url)


def _measure(stack: Any, budget: Budget, reserve_s: float, processes: int, runners: int,
             stripe_url: str) -> dict[str, Any]:
    emulator = EmulatorAdmin(stripe_url)
    limits = emulator.rate_limits()
    if (limits["global_per_second"], limits["per_endpoint_per_second"]) != (GLOBAL_LIMIT, ENDPOINT_LIMIT):
        raise RuntimeError(f"the emulator's limits are {limits}, not {GLOBAL_LIMIT}/{ENDPOINT_LIMIT}")
    sqs = boto3.client("sqs")
    queue_url, dlq_url = stack.resources.queue_url, stack.resources.dlq_url
    logs = tempfile.TemporaryDirectory(prefix="bench-month-end-")
    log_dir = Path(logs.name)
    workers: list[Any] = []
    context = spawn_context()
    go, stop, results = context.Event(), context.Event(), context.Queue()
    stream_stop, stream_results = context.Event(), context.Queue()
    # The stream handler runs in a process of its own, as the Lambda it is, not in this one's GIL.
    stream = start_process(stream_worker, (stream_stop, stream_results), log_dir)
    stream_results.get(timeout=180)
    try:
        invoices, setup_s = _set_up(budget, reserve_s, log_dir)
        # The stream handler enqueues one message per finalized invoice; wait until it has caught up.
        waited = time.monotonic()
        while _visible(sqs, queue_url) < len(invoices) and time.monotonic() - waited < 120:
            time.sleep(0.5)
        queued, stream_lag_s = _visible(sqs, queue_url), time.monotonic() - waited
        dlq_before = _visible(sqs, dlq_url)
        # Worker processes start (imports, clients) before the clock does, as warm Lambdas would be.
        workers = [start_process(sync_worker, (go, stop, results, runners, stripe_url), log_dir)
                   for _ in range(processes)]
        for _ in workers:
            results.get(timeout=180)
        emulator.reset_request_counts()
        say(f"  month-end: {queued:,} sync messages queued; syncing with {processes} worker processes "
            f"x {runners} pollers")
        started = time.monotonic()
        go.set()
        deadline = started + max(60.0, budget.remaining() - reserve_s)
        last_report = started
        while time.monotonic() < deadline and _queue_depth(sqs, queue_url) > 0:
            if time.monotonic() - last_report > 15:
                last_report = time.monotonic()
                counts = emulator.request_counts()
                say(f"  month-end: {counts['total']:,} Stripe requests so far "
                    f"({counts['by_status'].get('429', 0):,} answered 429)")
            time.sleep(1.0)
        wall = time.monotonic() - started
        drained = _queue_depth(sqs, queue_url) == 0
    finally:
        go.set()
        stop.set()
        stream_stop.set()
    stats: dict[str, int] = {}
    for worker in workers:
        part = results.get(timeout=60)
        for key, value in part.items():
            stats[key] = stats.get(key, 0) + value
        worker.join(timeout=30)
    stream_stats = stream_results.get(timeout=60)
    stream.join(timeout=30)
    counts = emulator.request_counts()
    logged, errors = _log_counts(log_dir)
    logs.cleanup()
    rejected = counts["by_status"].get("429", 0)
    admitted = counts["total"] - rejected
    rate = admitted / wall
    dlq = _visible(sqs, dlq_url) - dlq_before
    synced = _synced(invoices)
    share = rate / GLOBAL_LIMIT
    params = {"invoices": len(invoices), "invoices_wanted": TARGET_INVOICES, "worker_processes": processes,
              "pollers_per_process": runners, "sqs_batch_size": 10,
              "limits": f"{GLOBAL_LIMIT}/s global, {ENDPOINT_LIMIT}/s per endpoint",
              "lines_per_invoice": LINES_PER_INVOICE}
    busiest = max(counts["by_endpoint"].items(), key=lambda item: item[1], default=("-", 0))
    short = None if len(invoices) == TARGET_INVOICES else (
        f"set-up stopped at {len(invoices):,} of {TARGET_INVOICES:,} invoices to keep the run within its budget")
    return {
        "wall_seconds": figure(rounded(wall, 1), "s", params, drained=drained, setup_seconds=rounded(setup_s, 1),
                               stream_to_queue_wait_s=rounded(stream_lag_s, 1), note=short),
        "request_rate_share_of_limit": figure(
            rounded(share, 3), "share of 100/s", params, target=f">= {TARGET_SHARE}", met=share >= TARGET_SHARE,
            admitted_per_second=rounded(rate, 1), requests_total=counts["total"], requests_429=rejected,
            requests_per_invoice=rounded(counts["total"] / max(1, len(invoices)), 2),
            invoices_per_second=rounded(synced / wall, 2),
            seconds_per_sync_per_poller=rounded(processes * runners * wall / max(1, synced), 2),
            busiest_endpoint={"endpoint": busiest[0], "per_second": rounded(busiest[1] / wall, 1)},
            by_status=counts["by_status"], runner_stats=stats, stream_stats=stream_stats,
            retries_logged=logged["sync will retry"], permanent_failures_logged=logged["sync failed permanently"],
            worker_errors=errors[:5]),
        "admitted_requests_per_second": figure(rounded(rate, 1), "requests/s", params),
        "dlq_messages": figure(dlq, "messages", params, target="0", met=dlq == 0),
        "invoices_synced": figure(synced, "invoices", params, target=f"= {len(invoices)}",
                                  met=synced == len(invoices), note=short),
    }
