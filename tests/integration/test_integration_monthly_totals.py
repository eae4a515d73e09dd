"""Finance totals by month over three years: exact, and read from month rollups whose cost
follows the months asked, not the number of invoices."""

from __future__ import annotations

import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from acceptance_support import bearer, create_org, dynamo_reads

NOW = datetime(2026, 11, 15, tzinfo=UTC)
FIRST, LAST = "2301-01", "2303-12"  # a window no other test writes to
MONTHS = 36
SHARDS = 8
PAIRS = 20  # (shard, month) pairs that hold invoices
PER_PAIR_MANY = 10
VOID_MONTH = "2320-05"  # outside the window above


@dataclass(frozen=True)
class Made:
    org: str
    invoice_id: str
    period: str
    subtotal: int
    credits: int

    @property
    def total(self) -> int:
        return self.subtotal - self.credits


def org_in_shard(shard: int) -> str:
    from chalicelib.storage import keys
    from chalicelib.storage.orgs import OrgRepository

    while True:
        name = f"fin-{uuid.uuid4().hex[:12]}"
        if keys.rollup_shard_for(name) == shard:
            OrgRepository().upsert(name, "Finance Test", "billing@example.com", "usd", NOW)
            return name


def finalized_invoice(org: str, period: str, subtotal: int, credits: int) -> Made:
    """A header written straight in `finalizing` (finalize's first step), then finalize's own last
    step: the guarded move to `finalized` that adds the invoice to the month rollups. Sync is left
    out so these invoices do not queue up for Stripe in other suites sharing the table."""
    from datetime import timedelta

    from chalicelib.domain.invoice import InvoiceStatus, invoice_id_for
    from chalicelib.domain.lines import Totals
    from chalicelib.domain.periods import Period
    from chalicelib.storage import keys
    from chalicelib.storage.convert import invoice_from_record
    from chalicelib.storage.invoices import InvoiceRepository
    from chalicelib.storage.models import InvoiceItem

    invoice_id = invoice_id_for(Period.parse(period))
    header = InvoiceItem(
        keys.org_pk(org), keys.invoice_sk(invoice_id), org=org, invoice_id=invoice_id, number=f"FIN-{period}",
        period=period, status=InvoiceStatus.FINALIZING.value, currency="usd", created_at=NOW, updated_at=NOW,
        gsi1pk=keys.state_gsi_pk("finalized_elsewhere"), gsi1sk=keys.state_gsi_sk(period, org))
    header.save(condition=InvoiceItem.pk.does_not_exist())
    InvoiceRepository().transition(
        invoice_from_record(header), InvoiceStatus.FINALIZED, NOW, totals=Totals(subtotal, credits, subtotal - credits),
        line_count=1, due_at=NOW + timedelta(days=14), rollup_sign=+1)
    return Made(org, invoice_id, period, subtotal, credits)


def month(index: int) -> str:
    year, month0 = divmod(index, 12)
    return f"{2301 + year:04d}-{month0 + 1:02d}"


def pairs() -> list[tuple[int, str]]:
    # 7 is prime to 36, so the months are distinct; every shard is used.
    return [(i % SHARDS, month((i * 7) % MONTHS)) for i in range(PAIRS)]


def make_invoices(orgs: dict[int, list[str]], copies: range) -> list[Made]:
    """One invoice per (pair, copy); each worker owns whole shards, so no two write one rollup at once."""
    def work(shards: list[int]) -> list[Made]:
        made = []
        for shard, period in pairs():
            if shard in shards:
                for copy in copies:
                    subtotal = 1000 + 37 * copy + 11 * shard
                    made.append(finalized_invoice(orgs[shard][copy], period, subtotal, (copy % 4) * 25))
        return made

    with ThreadPoolExecutor(4) as pool:
        results = pool.map(work, [[0, 4], [1, 5], [2, 6], [3, 7]])
    return [m for batch in results for m in batch]


def report(api: Any, tokens: dict[str, str], monkeypatch: Any, org: str | None = None, first: str = FIRST,
           last: str = LAST) -> tuple[dict[str, Any], Any]:
    query = f"from={first}&to={last}" + (f"&org={org}" if org else "")
    # A token's last use is written at most once per 15 minutes: a first request takes that write.
    api.http.get(f"/v1/reports/monthly-totals?{query}", headers=bearer(tokens["admin"]))
    with dynamo_reads(monkeypatch) as reads:
        response = api.http.get(f"/v1/reports/monthly-totals?{query}", headers=bearer(tokens["admin"]))
    assert response.status_code == 200, response.body
    return response.json_body, reads


def expected_months(made: list[Made]) -> dict[str, tuple[int, int, int, int]]:
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for m in made:
        row = sums[m.period]
        row[0] += 1
        row[1] += m.subtotal
        row[2] += m.credits
        row[3] += m.total
    return {month(i): tuple(sums.get(month(i), [0, 0, 0, 0])) for i in range(MONTHS)}  # type: ignore[misc]


def got_months(body: dict[str, Any]) -> dict[str, tuple[int, int, int, int]]:
    return {row["period"]: (row["invoice_count"], row["subtotal_cents"], row["credits_cents"], row["total_cents"])
            for row in body["months"]}


@pytest.fixture(scope="module")
def finance_orgs(local_aws: Any) -> dict[int, list[str]]:
    with ThreadPoolExecutor(4) as pool:
        names = list(pool.map(org_in_shard, [s for s in range(SHARDS) for _ in range(PER_PAIR_MANY)]))
    return {s: names[s * PER_PAIR_MANY:(s + 1) * PER_PAIR_MANY] for s in range(SHARDS)}


def test_three_years_of_totals_read_the_same_items_for_20_or_200_invoices_and_stay_exact(
        api, tokens, monkeypatch, finance_orgs):
    few = make_invoices(finance_orgs, range(1))
    assert len(few) == PAIRS
    few_body, few_reads = report(api, tokens, monkeypatch)

    many = few + make_invoices(finance_orgs, range(1, PER_PAIR_MANY))
    assert len(many) == PAIRS * PER_PAIR_MANY
    many_body, many_reads = report(api, tokens, monkeypatch)

    assert got_months(few_body) == expected_months(few)
    assert got_months(many_body) == expected_months(many)
    assert few_body["items_read"] == many_body["items_read"] == PAIRS <= MONTHS * SHARDS
    # What DynamoDB really returned: the bearer token, then one rollup item per (shard, month) with invoices.
    assert few_reads.items == many_reads.items == PAIRS + 1
    assert few_reads.calls == many_reads.calls == {"GetItem": 1, "Query": SHARDS}


def test_one_orgs_totals_read_at_most_one_item_per_month(api, tokens, monkeypatch):
    org = create_org("fin")
    made = [finalized_invoice(org, month(i), 500 + i, 0) for i in range(0, MONTHS, 3)]

    body, reads = report(api, tokens, monkeypatch, org)

    assert body["items_read"] == len(made) <= MONTHS
    assert reads.calls == {"GetItem": 1, "Query": 1}
    assert got_months(body) == expected_months(made)


def test_voiding_a_finalized_invoice_takes_it_out_of_its_month(api, tokens, monkeypatch):
    org, other = create_org("fin"), create_org("fin")
    kept = finalized_invoice(org, VOID_MONTH, 4000, 100)
    voided = finalized_invoice(other, VOID_MONTH, 2500, 0)
    before, _ = report(api, tokens, monkeypatch, first=VOID_MONTH, last=VOID_MONTH)

    response = api.http.post(f"/v1/orgs/{voided.org}/invoices/{voided.invoice_id}/void",
                             headers=bearer(tokens["admin"]))

    assert response.status_code == 200, response.body
    after, _ = report(api, tokens, monkeypatch, first=VOID_MONTH, last=VOID_MONTH)
    count, subtotal, credits, total = got_months(before)[VOID_MONTH]
    assert count >= 2
    assert got_months(after)[VOID_MONTH] == (count - 1, subtotal - 2500, credits, total - 2500)
    mine = report(api, tokens, monkeypatch, voided.org, VOID_MONTH, VOID_MONTH)[0]
    assert got_months(mine)[VOID_MONTH] == (0, 0, 0, 0)
    kept_month = report(api, tokens, monkeypatch, org, VOID_MONTH, VOID_MONTH)[0]
    assert got_months(kept_month)[VOID_MONTH] == (1, kept.subtotal, kept.credits, kept.total) == (1, 4000, 100, 3900)


def test_a_closed_month_reads_one_item_per_shard_with_or_without_invoices(api, tokens, monkeypatch, finance_orgs):
    """Month-end (`open_month`, run by `finalize_due`) gives every shard an item for the month it closes,
    so a report over closed months reads months × shards items whatever the number of invoices, and an
    empty month reads zero."""
    from chalicelib.domain.periods import Period
    from chalicelib.storage.rollups import open_month

    empty, busy = "2330-01", "2330-02"  # outside the other tests' windows
    made = [finalized_invoice(finance_orgs[0][0], busy, 700, 50)]
    assert report(api, tokens, monkeypatch, first=empty, last=busy)[0]["items_read"] == 1

    for closed in (empty, busy, busy):  # the hourly run closes the same month again: no change
        open_month(Period.parse(closed))

    body, reads = report(api, tokens, monkeypatch, first=empty, last=busy)
    assert body["items_read"] == 2 * SHARDS
    assert reads.calls == {"GetItem": 1, "Query": SHARDS}
    assert {row["period"]: (row["invoice_count"], row["total_cents"]) for row in body["months"]} == {
        empty: (0, 0), busy: (1, made[0].total)}
