"""A thousand finalized invoices (a hundred at the reduced scale of `make test`) reach Stripe through the
real path (table stream → handle_table_changes → SQS → sync_invoices, driven by the event runner) while
everything around them misbehaves: Stripe answers 5xx, 429 and lock timeouts, is slow, and loses responses
after applying the request; workers die between any two side effects (leaving their lease behind); the stream
function fails after enqueueing, so messages arrive twice; four workers take messages at once, while the
month-end job is still finalizing. Every invoice ends synced exactly once and matches Stripe. Every
EXTRAS_EVERY-th org also holds a support plan it upgraded mid-month and prepaid credit (some of them more
than their invoice), so recurring lines, negative items and invoices settled at zero go through the same
chaos. With collection on (the parameter), the orgs are billed every way Stripe collects (emailed, and
charged with payments that succeed, decline or need the customer's action): each invoice is still advanced
by Stripe exactly once (one charge attempt or one email)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from reliability_support import ProcessDied, report, running_stack, with_tracebacks
from support.scale import sized

pytestmark = pytest.mark.slow  # minutes at full size (`make reliability`); reduced in `make test`

INVOICES = sized(reduced=100, full=1000)
TWO_PERIOD_ORGS = INVOICES // 10  # orgs with last month's invoice too: two workers may ensure their customer at once
LINES = 3
EXTRAS_EVERY = 5  # every 5th org: a support plan upgraded mid-month and a credit grant
WORKERS = 4
# Production's proportions, shrunk: a worker never outlives its lease (the function times out at 30 s, the lease
# lasts 2 min), and a dead worker's message returns once its lease has expired (visibility 3 min). The reduced
# scale shrinks them again, in the same proportions: waiting out dead workers is most of a small run's time. The
# longest sync measured was 3 s at the reduced scale on a loaded machine (the test checks it stays below the lease).
LEASE_TTL = timedelta(seconds=sized(reduced=10, full=30))  # longer than any one sync takes (checked below)
VISIBILITY_SECONDS = sized(reduced=12, full=40)
BACKOFF_CAP_SECONDS = sized(reduced=3, full=10)  # x 4 retries > LEASE_TTL, as 10+20+40+80 s > 2 min in production
CRASH_RATE = 0.015  # per checkpoint (7 per sync): about one first attempt in ten dies somewhere
STREAM_FAILURE_RATE = 0.1  # per stream batch, after its messages were sent
DEADLINE_S = 900  # a guard against a hang: finalizing and syncing them all takes minutes
SEED = 20261127
# With collection on, org i is billed the way COLLECTION[i % 4] says: (collection method, charge outcome).
COLLECTION = (("send_invoice", None), ("charge_automatically", "succeeds"),
              ("charge_automatically", "declines"), ("charge_automatically", "requires_action"))


@pytest.fixture(scope="module")
def chaos_stack(local_aws: Any) -> Any:
    """Its own DynamoDB Local, as the load test's: on the run's shared server, minutes of syncing under chaos
    held up the tests the other worker ran meanwhile (the usage API module took 120 s instead of 1 s)."""
    options = {"global_rate_limit": 100, "endpoint_rate_limit": 25, "seed": SEED}  # Stripe's live limits
    with running_stack(local_aws, own_dynamodb=True, api=False, stripe_options=options,
                       sync_queue_visibility_seconds=VISIBILITY_SECONDS) as stack:
        yield stack


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """stripe-python waits at least 0.5 s between retries, and the worker backs a failed message off through
    its visibility (10 s and up), and leases last 2 min: all shrunk, so retries happen in test time."""
    from stripe import _http_client

    from chalicelib import queue
    from chalicelib.services import sync

    monkeypatch.setattr(_http_client.HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(_http_client.HTTPClient, "MAX_DELAY", 0.05)
    # As in production (lease 2 min; backoffs 10+20+40+80 s before the last receive), a message that finds a
    # dead worker's lease backs off for longer than the lease lasts before its receives run out.
    monkeypatch.setattr(queue, "MAX_VISIBILITY_SECONDS", BACKOFF_CAP_SECONDS)
    monkeypatch.setattr(sync, "LEASE_TTL", LEASE_TTL)


class Chaos:
    """Seeded dice for the workers and the stream function, and what they did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(SEED)
        self._dying = threading.local()
        self.crashes: Counter[str] = Counter()
        self.stream_failures = 0
        self.longest_sync = 0.0

    def roll(self, rate: float) -> bool:
        with self._lock:
            return self._rng.random() < rate

    def checkpoint(self, step: str) -> None:
        if self.roll(CRASH_RATE):
            with self._lock:
                self.crashes[step] += 1
            self._dying.now = True
            raise ProcessDied(step)

    def dying(self) -> bool:
        """True once, in the thread whose worker just died: its `finally` must not run."""
        dying = getattr(self._dying, "now", False)
        self._dying.now = False
        return dying


def install_chaos(monkeypatch: pytest.MonkeyPatch, chaos: Chaos) -> None:
    """Workers built by the queue handler carry the chaos checkpoint, and a dead one leaves its lease."""
    from chalicelib.services import sync_worker
    from chalicelib.services.sync import InvoiceSync
    from chalicelib.storage import leases

    class DyingInvoiceSync(InvoiceSync):
        def __init__(self, gateway: Any, **kwargs: Any) -> None:
            super().__init__(gateway, checkpoint=chaos.checkpoint, **kwargs)

        def sync(self, org: str, invoice_id: str, now: datetime) -> Any:
            started = time.monotonic()
            try:
                return super().sync(org, invoice_id, now)
            finally:
                chaos.longest_sync = max(chaos.longest_sync, time.monotonic() - started)

    real_release = leases.release

    def release(org: str, invoice_id: str, owner: str) -> None:
        if not chaos.dying():  # a killed process runs no `finally`: its lease stays until it expires
            real_release(org, invoice_id, owner)

    monkeypatch.setattr(sync_worker, "InvoiceSync", DyingInvoiceSync)
    monkeypatch.setattr(leases, "release", release)


def billing(org_index: int, collection: bool) -> tuple[str, str | None]:
    """How org number `org_index` is billed: Stripe's default email, or the COLLECTION mix."""
    return COLLECTION[org_index % len(COLLECTION)] if collection else ("send_invoice", None)


def org_number(org: str) -> int:
    return int(org.rsplit("-", 1)[1])


def finalized_invoices(now: datetime, collection: bool = False, emulator: Any = None) -> list[tuple[str, str]]:
    """INVOICES finalized invoices of LINES lines each: one per org, and for TWO_PERIOD_ORGS orgs last
    month's as well (recorded and finalized as of a moment last month). Four writers at once."""
    from chalicelib.config import settings
    from chalicelib.domain.collection import Collection, CollectionMethod
    from chalicelib.domain.invoice import invoice_id_for
    from chalicelib.domain.periods import Period
    from chalicelib.services.invoices import InvoiceService
    from chalicelib.services.usage import UsageEvent, record_usage
    from chalicelib.storage.orgs import OrgRepository

    stamp = now.strftime("%H%M%S")
    earlier = now - timedelta(days=31)
    orgs = [f"chaos-{stamp}-{index:04d}" for index in range(INVOICES - TWO_PERIOD_ORGS)]
    billed = [(org, now) for org in orgs] + [(org, earlier) for org in orgs[:TWO_PERIOD_ORGS]]

    def create(org: str) -> None:
        method, outcome = billing(org_number(org), collection)
        OrgRepository().upsert(org, f"Chaos {org}", f"{org}@example.com", "usd", now,
                               Collection.of(CollectionMethod(method), None))
        if outcome:
            emulator.set_payment_outcome(outcome, customer=f"{org}@example.com")

    def extras(index: int) -> None:
        if index % EXTRAS_EVERY == 0:
            subscribe_and_grant(orgs[index], index, earlier if index < TWO_PERIOD_ORGS else now)

    def record(group: list[tuple[str, datetime]]) -> None:
        moment = group[0][1]
        events = [UsageEvent(f"e{line}-{moment:%Y%m}", org, f"app{line}", "egress", Decimal(17 + 3 * line) / 4,
                             ("iad", "fra", "nrt")[line % 3], {}, moment) for org, _ in group for line in range(LINES)]
        results = record_usage(events, moment, settings())
        assert {r.status for r in results} == {"accepted"}, [r for r in results if r.status != "accepted"][:3]

    def finalize(pair: tuple[str, datetime]) -> tuple[str, str]:
        org, moment = pair
        return org, InvoiceService().finalize(org, invoice_id_for(Period.of(moment)), moment).id

    per_request = 500 // LINES  # orgs per usage batch: the API's batch limit
    groups = [group for moment in (now, earlier)
              for members in [[pair for pair in billed if pair[1] == moment]]
              for group in (members[i:i + per_request] for i in range(0, len(members), per_request))]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(create, orgs))
        list(pool.map(extras, range(len(orgs))))
        list(pool.map(record, groups))
        made = list(pool.map(finalize, billed))
    assert len(made) == INVOICES
    return made


def subscribe_and_grant(org: str, index: int, moment: datetime) -> None:
    """Standard support from the start of the period, premium from half-way to `moment`; a credit grant, every
    other time larger than the invoice (which then settles at zero)."""
    from chalicelib.config import settings
    from chalicelib.domain.credits import CreditReason
    from chalicelib.domain.periods import Period
    from chalicelib.services.credits import CreditService
    from chalicelib.services.subscriptions import SubscriptionService

    start = Period.of(moment).start
    subscriptions = SubscriptionService(settings())
    subscriptions.change(org, "start", None, "support-standard", start, moment)
    subscriptions.change(org, "upgrade", None, "support-premium", start + (moment - start) / 2, moment)
    cents = 1_000_000 if index % (2 * EXTRAS_EVERY) == 0 else 1234
    CreditService().grant(org, "chaos-credit", cents, CreditReason.PROMOTION, "chaos promotion", None, moment)


@pytest.mark.parametrize("collection", [True], ids=["collection-on"])
def test_every_invoice_syncs_exactly_once_through_stripe_faults_and_dying_workers(
        chaos_stack, fast_retries, monkeypatch, collection):
    import app
    from chalicelib.storage.invoices import InvoiceRepository
    from devstack.event_runner import EventRunner

    stack, emulator = chaos_stack, chaos_stack.stripe
    chaos = Chaos()
    install_chaos(monkeypatch, chaos)
    emulator.add_fault("*", error_rate=0.03, rate_limit_rate=0.01, lock_timeout_rate=0.02,
                       lost_response_rate=0.02)
    emulator.add_fault("POST /v1/invoices/*/finalize", latency_ms=40)
    emulator.add_fault("POST /v1/invoices/*/add_lines", latency_ms=25)

    def stream_function(event: dict[str, Any], context: Any) -> Any:
        answer = app.handle_table_changes(event, context)
        if chaos.roll(STREAM_FAILURE_RATE):
            chaos.stream_failures += 1
            raise RuntimeError("the stream function timed out after sending its messages")
        return answer

    env = stack.env
    stream = EventRunner(stream_function, None, stream_arn=stack.resources.stream_arn,
                         dynamodb_streams_endpoint=env["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"],
                         region=env["AWS_DEFAULT_REGION"], max_retries=10)
    workers = [EventRunner(None, app.sync_invoices, queue_url=stack.resources.queue_url,
                           queue_arn=stack.resources.queue_arn, sqs_endpoint=env["AWS_ENDPOINT_URL_SQS"],
                           region=env["AWS_DEFAULT_REGION"], sqs_wait_seconds=1) for _ in range(WORKERS)]
    stop = threading.Event()
    deadline = time.monotonic() + DEADLINE_S
    errors: list[BaseException] = []

    def work(runner: EventRunner) -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                runner.poll_once(sqs_wait_seconds=1)
            except ProcessDied:
                continue  # the next "process" polls again; the dead one's batch returns after the visibility
            except BaseException as error:  # anything else ends the test
                errors.append(error)
                return

    repo = InvoiceRepository()
    sqs = workers[0].sqs
    replayed = 0

    def depth(url: str) -> int:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def replay_dead_letters() -> int:
        """The on-call runbook for messages that used up their receives: back to the sync queue. Some do here:
        a worker that dies fails its whole batch, so its batch-mates spend receives too."""
        count = 0
        for _ in range(100):
            batch = sqs.receive_message(QueueUrl=stack.resources.dlq_url, MaxNumberOfMessages=10,
                                        WaitTimeSeconds=0).get("Messages", [])
            if not batch:
                return count
            for message in batch:
                sqs.send_message(QueueUrl=stack.resources.queue_url, MessageBody=message["Body"])
                sqs.delete_message(QueueUrl=stack.resources.dlq_url, ReceiptHandle=message["ReceiptHandle"])
                count += 1
        return count

    made: list[tuple[str, str]] = []
    finalized_in: list[float] = []

    def month_end() -> None:
        """Invoices are finalized while the workers already sync the first ones, as at a month's end."""
        try:
            made.extend(finalized_invoices(datetime.now(UTC), collection, emulator))
            finalized_in.append(time.monotonic() - started)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,), name=f"sync-worker-{i}") for i, w in enumerate(workers)]
    threads.append(threading.Thread(target=month_end, name="month-end"))
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        while True:
            stream.poll_once()
            failed = list(repo.by_state("sync_failed"))
            assert not failed, ([(i.org, i.id, i.sync.last_error) for i in failed[:5]],
                                f"longest sync so far {chaos.longest_sync:.1f}s, lease {LEASE_TTL}")
            assert not errors, with_tracebacks(errors)
            replayed += replay_dead_letters()
            if finalized_in and not any(True for _ in repo.by_state("sync_pending")) \
                    and depth(stack.resources.queue_url) == 0:
                break
            assert time.monotonic() < deadline, (
                f"timed out: {sum(1 for _ in repo.by_state('sync_pending'))} invoices still pending")
            time.sleep(0.5)  # pacing of this supervising loop only; the workers poll on their own
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        for runner in [stream, *workers]:
            runner.stop()
        emulator.clear_faults()
    elapsed = time.monotonic() - started

    counts = emulator.request_counts()
    delivered = sum(w.stats["sqs_messages"] for w in workers)
    report(f"sync chaos: {INVOICES} invoices finalized in {finalized_in[0]:.0f}s, all synced in {elapsed:.0f}s; "
           f"Stripe requests {counts['total']} by status {counts['by_status']}; deliveries {delivered}; "
           f"worker deaths {sum(chaos.crashes.values())} {dict(chaos.crashes)}; "
           f"stream failures {chaos.stream_failures}; dead letters replayed {replayed}; "
           f"longest sync {chaos.longest_sync:.1f}s")

    # The premise of the lease: no worker outlived it (in production the function's timeout guarantees it).
    assert chaos.longest_sync < LEASE_TTL.total_seconds(), f"a sync took {chaos.longest_sync:.0f}s"

    # Exactly one Stripe invoice per ours, finalized, with our lines and total to the cent.
    state = emulator.state()
    copies: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for stripe_invoice in state["invoices"]:
        metadata = stripe_invoice["metadata"]
        copies.setdefault((metadata.get("org"), metadata.get("invoice_id")), []).append(stripe_invoice)
    assert set(copies) == set(made), "Stripe holds invoices that are not ours, or misses some"
    assert {key: len(found) for key, found in copies.items() if len(found) != 1} == {}
    customers = Counter(customer["metadata"].get("org") for customer in state["customers"])
    assert set(customers) == {org for org, _ in made} and set(customers.values()) == {1}, \
        {org: n for org, n in customers.items() if n != 1}
    advanced = Counter(event["data"]["object"]["id"] for event in emulator.events()
                       if event["type"] in ("invoice.sent", "invoice.paid", "invoice.payment_failed",
                                            "invoice.payment_action_required"))
    for org, invoice_id in made:
        ours = repo.get(org, invoice_id)
        assert ours is not None
        (copy,) = copies[(org, invoice_id)]
        assert ours.sync.state.value == "synced" and ours.sync.last_error is None, (org, invoice_id, ours.sync)
        assert ours.sync.stripe_invoice_id == copy["id"] and ours.sync.stripe_invoice_number == copy["number"]
        assert ours.sync.hosted_invoice_url == copy["hosted_invoice_url"]
        method, outcome = billing(org_number(org), collection)
        # Stripe advanced it exactly once: one email, or one charge attempt with the customer's outcome;
        # an invoice its credit settled has nothing to collect and is paid at once.
        assert copy["collection_method"] == method and copy["auto_advance"] is True
        assert copy["currency"] == ours.currency
        if ours.total_cents:
            assert copy["status"] == ("paid" if outcome == "succeeds" else "open"), (org, copy["status"])
            assert copy["attempt_count"] == (0 if outcome is None else 1), (org, copy["attempt_count"])
        else:
            assert copy["status"] == "paid", (org, copy["status"])
        assert advanced[copy["id"]] == 1, (org, invoice_id, advanced[copy["id"]])
        lines = sorted((line["metadata"]["line_key"], line["amount"]) for line in copy["lines"]["data"])
        assert lines == sorted((line.id, line.amount_cents) for line in repo.lines(org, invoice_id)), (org, lines)
        assert copy["total"] == ours.total_cents == sum(amount for _, amount in lines)

    # Invoices with recurring lines and applied credit were among them, and settled at zero where credit covered all.
    kinds = Counter(line.kind.value for org, invoice_id in made for line in repo.lines(org, invoice_id))
    assert kinds["recurring"] and kinds["credit_applied"], kinds
    assert any(repo.get(org, invoice_id).total_cents == 0 for org, invoice_id in made)  # type: ignore[union-attr]

    # The chaos did happen, on every front.
    assert counts["by_status"].get("500", 0) and counts["by_status"].get("429", 0) and counts["by_status"].get("lost")
    assert sum(chaos.crashes.values()) > 0 and chaos.stream_failures > 0
    assert delivered > INVOICES  # redeliveries and duplicates were handled
    assert depth(stack.resources.queue_url) == 0 and depth(stack.resources.dlq_url) == 0
