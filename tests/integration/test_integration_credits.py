"""Prepaid credits on DynamoDB Local: grants through the API, a preview on the open invoice, credit applied at
finalize soonest expiry first up to the total, shown as credit applied and amount due, monthly totals with
gross, credits and net, a void giving back exactly what its invoice used, expiry once no invoice can use it,
and a negative total carried over; the ledger identity holds throughout."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from acceptance_support import assert_error, bearer
from support.ledger import assert_ledger_identity_of

NOV, DEC = "inv_202611", "inv_202612"


def grant(api: Any, token: str, org: str, client_id: str, cents: int, expires_at: str | None = None,
          reason: str = "promotion") -> Any:
    body: dict[str, Any] = {"client_id": client_id, "amount_cents": cents, "reason": reason,
                            "description": f"{reason} {client_id}"}
    if expires_at:
        body["expires_at"] = expires_at
    return api.http.post(f"/v1/orgs/{org}/credits", headers=bearer(token), body=json.dumps(body))


def charge(org: str, period: str, cents: int, now: datetime) -> str:
    """A draft for `period` with one one-off charge of `cents`."""
    from chalicelib.domain.lines import LineKind
    from chalicelib.domain.periods import Period
    from chalicelib.services.invoices import InvoiceService
    from chalicelib.storage.invoices import InvoiceRepository

    invoice = InvoiceRepository().create_draft(org, Period.parse(period), now)
    InvoiceService().add_item(org, invoice.id, f"fee-{period}", LineKind.ONE_OFF, cents, "Platform fee", now)
    return invoice.id


def statement(org: str) -> Any:
    from chalicelib.services.credits import CreditService

    return CreditService().statement(org)


def assert_ledger_identity(org: str) -> Any:
    """The ledger identity (support.ledger) of the org's statement as the table holds it."""
    return assert_ledger_identity_of(statement(org))


def test_grants_are_idempotent_by_client_id_and_bad_ones_write_nothing(api, org, tokens, reader_token,
                                                                        pinned_clock):
    admin = tokens["admin"]
    created = grant(api, admin, org, "promo-1", 5000, "2027-01-01T00:00:00Z")
    assert created.status_code == 201, created.body
    assert (created.json_body["remaining"]["cents"], created.json_body["reason"]) == (5000, "promotion")
    assert grant(api, admin, org, "promo-1", 5000, "2027-01-01T00:00:00Z").json_body == created.json_body
    assert_error(grant(api, admin, org, "promo-1", 6000, "2027-01-01T00:00:00Z"), 409, "conflict")

    assert_error(grant(api, admin, org, "zero", 0), 422)
    assert_error(grant(api, admin, org, "past", 100, "2026-11-01T00:00:00Z"), 422)
    assert_error(grant(api, admin, org, "why", 100, reason="carryover"), 422)  # only the finalize carries over
    assert_error(api.http.post(f"/v1/orgs/{org}/credits", headers=bearer(admin), body=json.dumps(
        {"client_id": "f", "amount_cents": 10.5, "reason": "goodwill", "description": "x"})), 422)
    assert_error(grant(api, reader_token, org, "mine", 100), 403)
    assert_error(grant(api, admin, "no-such-org", "x", 100), 404)

    read = api.http.get(f"/v1/orgs/{org}/credits", headers=bearer(reader_token))
    assert read.status_code == 200, read.body
    assert read.json_body["balance"]["cents"] == read.json_body["granted"]["cents"] == 5000
    assert [(e["movement"], e["amount"]["cents"]) for e in read.json_body["ledger"]] == [("grant", 5000)]
    assert len(read.json_body["grants"]) == 1


def test_credit_applies_at_finalize_soonest_expiry_first_and_the_invoice_shows_what_is_due(
        api, org, tokens, pinned_clock):
    admin = tokens["admin"]
    pinned_clock.now = datetime(2026, 11, 10, tzinfo=UTC)
    charge(org, "2026-11", 5000, pinned_clock.now)
    for client_id, cents, expires in (("later", 1000, "2027-01-01T00:00:00Z"), ("never", 3000, None),
                                      ("soon", 2000, "2026-12-15T00:00:00Z"),
                                      ("too-soon", 500, "2026-11-20T00:00:00Z")):  # November ends after it
        assert grant(api, admin, org, client_id, cents, expires).status_code == 201

    upcoming = api.http.get(f"/v1/orgs/{org}/invoices/upcoming", headers=bearer(admin)).json_body
    assert {k: v["cents"] for k, v in upcoming["credit_preview"].items()} == {
        "balance": 6500, "would_apply": 5000, "balance_after": 1500, "amount_due_after": 0}
    assert upcoming["total"]["cents"] == 5000  # nothing is spent before finalize

    pinned_clock.now = datetime(2026, 12, 1, 2, tzinfo=UTC)
    finalized = api.http.post(f"/v1/orgs/{org}/invoices/{NOV}/finalize", headers=bearer(admin))
    assert finalized.status_code == 200, finalized.body
    body = api.http.get(f"/v1/orgs/{org}/invoices/{NOV}", headers=bearer(admin)).json_body
    assert (body["subtotal"]["cents"], body["credits"]["cents"], body["total"]["cents"]) == (5000, 5000, 0)
    assert (body["credits_applied"]["cents"], body["amount_due"]["cents"]) == (5000, 0)
    applied = [(line["description"], line["amount"]["cents"]) for line in body["lines"]
               if line["kind"] == "credit_applied"]
    assert sorted(applied) == sorted([("Promotional credit applied: promotion soon", -2000),
                                      ("Promotional credit applied: promotion later", -1000),
                                      ("Promotional credit applied: promotion never", -2000)])
    remaining = {g.client_id: g.remaining_cents for g in assert_ledger_identity(org).grants}
    assert remaining == {"soon": 0, "later": 0, "never": 1000, "too-soon": 500}

    report = api.http.get(f"/v1/reports/monthly-totals?from=2026-11&to=2026-11&org={org}",
                          headers=bearer(admin)).json_body["months"][0]
    assert (report["subtotal_cents"], report["credits_cents"], report["total_cents"]) == (5000, 5000, 0)


def test_a_void_restores_exactly_what_its_invoice_used(api, org, tokens, pinned_clock):
    admin = tokens["admin"]
    pinned_clock.now = datetime(2026, 11, 10, tzinfo=UTC)
    charge(org, "2026-11", 1200, pinned_clock.now)
    assert grant(api, admin, org, "promo", 1000, "2027-03-01T00:00:00Z").status_code == 201
    assert grant(api, admin, org, "prepaid", 5000, reason="prepayment").status_code == 201
    pinned_clock.now = datetime(2026, 12, 1, 2, tzinfo=UTC)
    assert api.http.post(f"/v1/orgs/{org}/invoices/{NOV}/finalize", headers=bearer(admin)).json_body[
        "total"]["cents"] == 0
    assert statement(org).balance.balance_cents == 4800

    voided = api.http.post(f"/v1/orgs/{org}/invoices/{NOV}/void", headers=bearer(admin))
    assert voided.status_code == 200, voided.body
    found = assert_ledger_identity(org)
    assert found.balance.balance_cents == 6000 and found.balance.restored_cents == 1200
    assert {g.client_id: g.remaining_cents for g in found.grants} == {"promo": 1000, "prepaid": 5000}
    assert sorted((e.movement.value, e.amount_cents) for e in found.entries if e.invoice_id == NOV) == [
        ("apply", 200), ("apply", 1000), ("restore", 200), ("restore", 1000)]
    assert_error(api.http.post(f"/v1/orgs/{org}/invoices/{NOV}/void", headers=bearer(admin)), 409)
    assert statement(org).balance.balance_cents == 6000  # a second void restores nothing


def test_what_a_grant_has_left_expires_once_the_invoices_it_serves_are_final(org, pinned_clock):
    from chalicelib.domain.credits import CreditReason
    from chalicelib.services.credits import CreditService

    service, grace = CreditService(), timedelta(hours=1)
    start = datetime(2026, 11, 10, tzinfo=UTC)
    service.grant(org, "ends-november", 700, CreditReason.GOODWILL, "sorry", datetime(2026, 12, 1, tzinfo=UTC),
                  start)
    service.grant(org, "no-expiry", 300, CreditReason.GOODWILL, "sorry", None, start)

    def expired_here(moment: datetime) -> list[str]:
        return [name for name in service.expire_due(moment, grace) if name.startswith(f"{org}/")]

    assert expired_here(datetime(2026, 12, 1, 0, 59, tzinfo=UTC)) == []  # November may still be finalized
    assert len(expired_here(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))) == 1
    assert expired_here(datetime(2026, 12, 1, 2, 0, tzinfo=UTC)) == []  # nothing is expired twice
    found = assert_ledger_identity(org)
    assert (found.balance.expired_cents, found.balance.balance_cents) == (700, 300)


def test_a_negative_total_is_carried_to_the_balance_and_a_void_takes_it_back_unless_it_was_spent(
        api, org, tokens, pinned_clock):
    admin = tokens["admin"]
    pinned_clock.now = datetime(2026, 11, 2, tzinfo=UTC)
    plan = {"change_id": "start", "plan": "support-standard", "effective_at": "2026-11-01T00:00:00Z"}
    assert api.http.post(f"/v1/orgs/{org}/subscriptions", headers=bearer(admin), body=json.dumps(plan)).status_code \
        == 201
    pinned_clock.now = datetime(2026, 12, 1, 2, tzinfo=UTC)
    assert api.http.post(f"/v1/orgs/{org}/invoices/{NOV}/finalize", headers=bearer(admin)).json_body[
        "total"]["cents"] == 2900
    pinned_clock.now = datetime(2026, 12, 3, tzinfo=UTC)  # cancelled from the start: November owes nothing
    stop = {"change_id": "stop", "family": "support", "effective_at": "2026-11-01T00:00:00Z"}
    assert api.http.post(f"/v1/orgs/{org}/subscriptions/cancel", headers=bearer(admin),
                         body=json.dumps(stop)).status_code == 201

    pinned_clock.now = datetime(2027, 1, 1, 2, tzinfo=UTC)
    december = api.http.post(f"/v1/orgs/{org}/invoices/{DEC}/finalize", headers=bearer(admin))
    assert december.status_code == 200, december.body
    body = api.http.get(f"/v1/orgs/{org}/invoices/{DEC}", headers=bearer(admin)).json_body
    assert sorted((line["kind"], line["amount"]["cents"]) for line in body["lines"]) == [
        ("carryover", 2900), ("late_recurring", -2900)]
    assert body["total"]["cents"] == 0
    found = assert_ledger_identity(org)
    assert [(g.reason.value, g.remaining_cents) for g in found.grants] == [("carryover", 2900)]

    # January spends some of it: December's void is refused until January's gives it back.
    charge(org, "2027-01", 1000, datetime(2027, 1, 5, tzinfo=UTC))
    pinned_clock.now = datetime(2027, 2, 1, 2, tzinfo=UTC)
    january = api.http.post(f"/v1/orgs/{org}/invoices/inv_202701/finalize", headers=bearer(admin))
    assert (january.json_body["credits"]["cents"], january.json_body["total"]["cents"]) == (1000, 0)
    assert_error(api.http.post(f"/v1/orgs/{org}/invoices/{DEC}/void", headers=bearer(admin)), 409, "conflict")
    assert api.http.post(f"/v1/orgs/{org}/invoices/inv_202701/void", headers=bearer(admin)).status_code == 200
    voided = api.http.post(f"/v1/orgs/{org}/invoices/{DEC}/void", headers=bearer(admin))
    assert voided.status_code == 200, voided.body
    found = assert_ledger_identity(org)
    assert (found.balance.balance_cents, found.balance.expired_cents) == (0, 2900)


def test_parallel_finalizes_and_voids_of_one_orgs_invoices_never_spend_or_restore_a_credit_twice(org):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from chalicelib.domain.credits import CreditReason
    from chalicelib.domain.errors import InvalidTransition
    from chalicelib.services.credits import CreditService
    from chalicelib.services.invoices import InvoiceService
    from chalicelib.storage.invoices import InvoiceRepository

    created = datetime(2026, 5, 2, tzinfo=UTC)
    invoices = [charge(org, f"2026-{month:02d}", 1500, created) for month in range(5, 11)]
    CreditService().grant(org, "shared", 4000, CreditReason.PREPAYMENT, "prepaid", None, created)
    now = datetime(2026, 11, 2, tzinfo=UTC)
    first, second = invoices[:3], invoices[3:]
    for invoice_id in first:
        InvoiceService().finalize(org, invoice_id, now)

    # Each of the first three voided twice at once, while each of the others is finalized twice at once.
    work = [("void", i) for i in first] * 2 + [("finalize", i) for i in second] * 2
    barrier = Barrier(len(work))

    def race(job: tuple[str, str]) -> str:
        action, invoice_id = job
        barrier.wait()
        service = InvoiceService()
        try:
            (service.finalize if action == "finalize" else service.void)(org, invoice_id, now)
            return "done"
        except InvalidTransition:
            return "refused"

    with ThreadPoolExecutor(max_workers=len(work)) as pool:
        outcomes = list(pool.map(race, work))

    assert outcomes.count("done") == len(invoices)
    found = assert_ledger_identity(org)
    moved = {i: {m: sum(e.amount_cents for e in found.entries if e.invoice_id == i and e.movement.value == m)
                 for m in ("apply", "restore")} for i in invoices}
    for invoice_id in first:  # a void gives back exactly what its invoice used, once
        assert moved[invoice_id]["restore"] == moved[invoice_id]["apply"]
    spent = 0
    for invoice_id in second:
        stored = InvoiceRepository().get(org, invoice_id)
        assert stored is not None and stored.status.value == "finalized"
        assert moved[invoice_id]["restore"] == 0
        assert stored.total_cents == 1500 - moved[invoice_id]["apply"]
        spent += moved[invoice_id]["apply"]
    assert spent == 4000 - found.balance.balance_cents  # what the voids gave back, the finalizes could spend once
