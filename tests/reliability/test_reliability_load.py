"""Load through the HTTP API (`chalice local`, which serves each connection on its own thread): eight producers
send 100,000 usage events (5,000 at the reduced scale of `make test`) in batches, resending one event in ten
later and some whole batches (reshuffled or not), retrying what the API could not take, while another caller
finalizes the period half way through.
Afterwards every event was accepted exactly once (or its answer was lost and a resend was told "duplicate"),
its dedup record names the line the answer named, and each line, each invoice and the whole add up to exactly
the events placed in them: nothing lost, nothing counted twice, nothing changed on the finalized invoice."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from reliability_support import Api, new_org_name, put_org, report, running_stack, with_tracebacks
from support.scale import sized

pytestmark = pytest.mark.slow  # minutes at full size (`make reliability`); reduced in `make test`

EVENTS = sized(reduced=5_000, full=100_000)
PRODUCERS = 8
BATCH = 500  # the API's largest batch
ORGS = 4
RESEND_SHARE = Decimal("0.10")  # of the events, sent a second time in a later batch
BATCH_RESEND_SHARE = 0.05  # of the batches, sent again whole once answered (half of them reshuffled)
MAX_ATTEMPTS = 8  # per batch, when the API answers 503 or the connection fails
LOAD_DEADLINE_S = 14 * 60
SEED = 20261127
PRODUCTS = [  # (meter, region, attributes); producers 0 and 7 share the first, so share its lines
    ("egress", "iad", {}), ("egress", "fra", {}), ("egress", "nrt", {}), ("egress", "syd", {}),
    ("volume_storage", "iad", {}), ("machine_runtime", "sjc", {"preset": "shared-cpu-2x"}),
    ("ipv4_address", None, {}),
]
APPS = ["web", "api", "worker"]


@pytest.fixture(scope="module")
def load_stack(local_aws: Any) -> Any:
    """Its own DynamoDB Local: the load's dedup records and their stream stay out of everyone's way and go
    when the module ends, and the other tests' tables do not slow the load down."""
    with running_stack(local_aws, own_dynamodb=True, api=True) as stack:
        yield stack


@dataclass
class Ledger:
    """Every answer the producers got, by event; what they sent; and what went wrong on the way."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    events: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (org, id) → event
    answers: dict[tuple[str, str], Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    placed: dict[tuple[str, str], set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))
    unanswered: set[tuple[str, str]] = field(default_factory=set)  # in a request whose answer was lost
    acknowledged: int = 0  # unique events answered accepted or duplicate at least once
    statuses: Counter[str] = field(default_factory=Counter)  # of the answers to requests
    sent: int = 0

    def record(self, batch: list[dict[str, Any]], response: requests.Response | None) -> list[dict[str, Any]]:
        """Book one answer; returns the events to send again later (refused only for now)."""
        again: list[dict[str, Any]] = []
        with self.lock:
            self.sent += len(batch)
            status = "lost" if response is None else str(response.status_code)
            self.statuses[status] += 1
            payload = response.json() if response is not None and response.status_code in (200, 422) else None
            if payload is not None and "error" in payload:
                payload = payload["error"]["details"]  # 422 when every event was refused: the answers are here
            if payload is None:
                self.unanswered.update((e["org"], e["id"]) for e in batch)
                return []
            for result in payload["results"]:
                event = batch[result["index"]]
                key = (event["org"], event["id"])
                first = not self.answers[key]["accepted"] + self.answers[key]["duplicate"]
                self.answers[key][result["status"]] += 1
                if result["status"] == "rejected":
                    assert result["error"]["code"] == "retry_later", result
                    again.append(event)
                    continue
                self.placed[key].add((result["invoice_id"], result["line_id"]))
                if first:
                    self.acknowledged += 1
        return again


def make_events(producer: int, count: int, orgs: list[str], rng: random.Random) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    since = max(now.replace(day=1, hour=0, minute=0, second=0, microsecond=0), now - timedelta(hours=2))
    span = max(int((now - since).total_seconds()), 1)
    events = []
    for n in range(count):
        meter, region, attributes = PRODUCTS[producer % len(PRODUCTS)]  # each producer meters one product
        event: dict[str, Any] = {
            "id": f"p{producer}-{n:06d}", "org": orgs[rng.randrange(len(orgs))], "app": rng.choice(APPS),
            "meter": meter, "quantity": str(Decimal(rng.randint(1, 5_000_000)).scaleb(-rng.randint(0, 4))),
            "timestamp": (since + timedelta(seconds=rng.randrange(span))).isoformat(),
        }
        if region:
            event["region"] = region
        if attributes:
            event["attributes"] = attributes
        events.append(event)
    return events


def send(api: Api, token: str, batch: list[dict[str, Any]], ledger: Ledger, rng: random.Random,
         deadline: float) -> list[dict[str, Any]]:
    """POST one batch, again on 503 or a failed connection (as a producer does); returns events to resend."""
    again: list[dict[str, Any]] = []
    for attempt in range(MAX_ATTEMPTS):
        assert time.monotonic() < deadline, "the load did not finish in time"
        try:
            response = api.call("POST", "/v1/usage", token, data=json.dumps({"events": batch}),
                                headers={"Content-Type": "application/json"})
        except requests.RequestException:
            response = None
        again = ledger.record(batch, response)
        if response is not None and response.status_code in (200, 422):
            return again
        assert response is None or response.status_code == 503, (response.status_code, response.text[:500])
        time.sleep(min(2.0, 0.05 * 2 ** attempt) * rng.random())  # a producer's jittered backoff
    raise AssertionError(f"a batch was refused {MAX_ATTEMPTS} times")


def produce(producer: int, api: Api, token: str, events: list[dict[str, Any]], ledger: Ledger,
            deadline: float) -> None:
    rng = random.Random(SEED + producer)
    fresh = list(events)
    resend: list[dict[str, Any]] = []  # events this producer will send a second time, in a later batch
    retry: list[dict[str, Any]] = []  # events the API asked to resend
    for _ in range(10 * len(events) // BATCH + 100):
        if not (fresh or resend or retry):
            return
        batch, retry = retry[:BATCH], retry[BATCH:]
        room = BATCH - len(batch)
        quota = min(len(resend), room // 10 if fresh else room)  # resends ride along while fresh events last
        batch, resend = batch + resend[:quota], resend[quota:]
        while fresh and len(batch) < BATCH:
            event = fresh.pop()
            batch.append(event)
            if rng.random() < float(RESEND_SHARE):
                resend.append(event)
        rng.shuffle(batch)
        retry += send(api, token, batch, ledger, rng, deadline)
        if rng.random() < BATCH_RESEND_SHARE:  # the answer was not believed: the whole batch again
            again = list(batch)
            if rng.random() < 0.5:
                rng.shuffle(again)
            retry += send(api, token, again, ledger, rng, deadline)
    raise AssertionError(f"producer {producer} did not run out of events")


def test_every_event_under_retries_duplicates_and_a_finalize_is_counted_once(load_stack):
    from chalicelib.domain.invoice import invoice_id_for
    from chalicelib.domain.periods import Period
    from chalicelib.storage.usage_writer import dedup_records

    stack = load_stack
    admin, usage = stack.tokens["admin"], stack.tokens["usage"]
    setup = Api.of(stack)
    orgs = [new_org_name("load") for _ in range(ORGS)]
    for org in orgs:
        put_org(setup, admin, org)
    setup.close()

    ledger = Ledger()
    per_producer = EVENTS // PRODUCERS
    plans = [make_events(p, per_producer, orgs, random.Random(SEED * 31 + p)) for p in range(PRODUCERS)]
    for plan in plans:
        ledger.events.update({(e["org"], e["id"]): e for e in plan})
    assert len(ledger.events) == EVENTS
    deadline = time.monotonic() + LOAD_DEADLINE_S
    failures: list[BaseException] = []

    def run(target: Any, *args: Any) -> None:
        try:
            target(*args)
        except BaseException as error:  # reported by the test below
            failures.append(error)

    closed: dict[str, Any] = {}
    closed_at: list[float] = []

    def finalize_half_way() -> None:
        api = Api.of(stack)
        while ledger.acknowledged < EVENTS // 2 and not failures:
            assert time.monotonic() < deadline, "the load never reached half way"
            time.sleep(0.2)  # pacing of this watcher only
        # The period the events were stamped in (the clock may have crossed into a new month since).
        invoice_id = invoice_id_for(Period.of(datetime.fromisoformat(plans[0][0]["timestamp"])))
        closed_at.append(time.monotonic())
        for org in orgs:
            answer = api.call("POST", f"/v1/orgs/{org}/invoices/{invoice_id}/finalize", admin)
            assert answer.status_code == 200 and answer.json()["status"] == "finalized", answer.text
            closed[org] = api.call("GET", f"/v1/orgs/{org}/invoices/{invoice_id}", admin).json()
        api.close()

    clients = [Api.of(stack) for _ in range(PRODUCERS)]
    threads = [threading.Thread(target=run, args=(produce, p, clients[p], usage, plans[p], ledger, deadline))
               for p in range(PRODUCERS)]
    threads.append(threading.Thread(target=run, args=(finalize_half_way,)))
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=LOAD_DEADLINE_S + 60)
    elapsed = time.monotonic() - started
    for client in clients:
        client.close()
    assert not any(thread.is_alive() for thread in threads), "a producer is stuck"
    report(f"load: {EVENTS} events ({ledger.sent} sent in {sum(ledger.statuses.values())} requests, answers "
           f"{dict(ledger.statuses)}) in {elapsed:.0f}s = {EVENTS / elapsed:.0f} events/s "
           f"({ledger.sent / elapsed:.0f} sent/s); finalized after {closed_at[0] - started if closed_at else -1:.0f}s")
    assert not failures, with_tracebacks(failures)

    # Every event: accepted exactly once, or (its answer lost) a resend was told it is a duplicate.
    for key in ledger.events:
        answers = ledger.answers[key]
        assert set(answers) <= {"accepted", "duplicate", "rejected"}, (key, answers)
        assert answers["accepted"] + answers["duplicate"] >= 1, (key, answers)
        assert answers["accepted"] == 1 or (answers["accepted"] == 0 and key in ledger.unanswered), (key, answers)
        assert len(ledger.placed[key]) == 1, (key, ledger.placed[key])  # every answer named the same line

    # Each event's dedup record exists and names the line its answers named.
    landed = dedup_records(list(ledger.events))
    assert set(landed) == set(ledger.events), f"{len(set(ledger.events) - set(landed))} events have no record"
    assert {key: (landed[key].invoice_id, landed[key].line_id) for key in ledger.events} == \
        {key: next(iter(ledger.placed[key])) for key in ledger.events}

    # Each line holds exactly its events; the invoices add up to all of them; the finalized ones did not move.
    expected: dict[tuple[str, str, str], list[Decimal]] = defaultdict(list)
    for key, counted in landed.items():
        expected[(key[0], counted.invoice_id, counted.line_id)].append(Decimal(ledger.events[key]["quantity"]))
    reader = Api(stack.api_url)
    total_billed = Decimal(0)
    late_lines = 0
    for org in orgs:
        listed = reader.call("GET", f"/v1/orgs/{org}/invoices", admin, params={"limit": "100"}).json()
        for summary in listed["invoices"]:
            invoice = reader.call("GET", f"/v1/orgs/{org}/invoices/{summary['id']}", admin).json()
            assert invoice["total"]["cents"] == sum(line["amount"]["cents"] for line in invoice["lines"])
            for line in invoice["lines"]:
                quantities = expected.pop((org, invoice["id"], line["id"]), [])
                assert (Decimal(line["quantity"]), line["event_count"]) == (sum(quantities), len(quantities)), \
                    (org, invoice["id"], line["id"])
                total_billed += Decimal(line["quantity"])
                late_lines += line["late"]
        if org in closed:
            now_closed = reader.call("GET", f"/v1/orgs/{org}/invoices/{closed[org]['id']}", admin).json()
            assert (now_closed["status"], now_closed["total"], now_closed["lines"]) == (
                "finalized", closed[org]["total"], closed[org]["lines"])
    reader.close()
    assert expected == {}, f"events placed in lines that no invoice shows: {list(expected)[:5]}"
    assert total_billed == sum(Decimal(e["quantity"]) for e in ledger.events.values())
    assert len(closed) == ORGS and late_lines > 0  # the finalize did race the writes
