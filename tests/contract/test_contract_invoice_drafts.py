"""One contract, two implementations: the DynamoDB invoice repository and the in-memory fake.

What the services rely on (chalicelib/services/ports.py, `InvoiceDrafts`): a period's draft is
created once, numbered from the org's own sequence, and racing creators converge on it.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from fakes.invoices import MemoryInvoices

from chalicelib.domain.invoice import InvoiceStatus, invoice_id_for
from chalicelib.domain.periods import Period

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)
NOV, DEC = Period(2026, 11), Period(2026, 12)


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.slow)])
def drafts_and_org(request: Any) -> tuple[Any, str]:
    org = f"contract-{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        return MemoryInvoices({org: "usd"}), org
    request.getfixturevalue("local_aws")
    from chalicelib.storage.invoices import InvoiceRepository
    from chalicelib.storage.orgs import OrgRepository

    OrgRepository().upsert(org, "Contract Org", "billing@example.com", "usd", NOW)
    return InvoiceRepository(), org


def test_a_period_draft_is_created_once_and_numbered_from_the_orgs_own_sequence(drafts_and_org):
    drafts, org = drafts_and_org
    assert drafts.get(org, invoice_id_for(NOV)) is None
    first = drafts.create_draft(org, NOV, NOW)
    assert (first.id, first.status, first.currency, first.period) == (invoice_id_for(NOV), InvoiceStatus.DRAFT,
                                                                      "usd", NOV)
    assert first.number.endswith("-0001")
    again = drafts.create_draft(org, NOV, NOW)
    assert (again.id, again.number) == (first.id, first.number)
    assert drafts.create_draft(org, DEC, NOW).number.endswith("-0002")
    assert drafts.get(org, first.id).number == first.number


def test_racing_creators_of_one_period_converge_on_one_invoice_and_one_number(drafts_and_org):
    drafts, org = drafts_and_org
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(lambda _: drafts.create_draft(org, NOV, NOW), range(8)))
    assert {(i.id, i.number) for i in made} == {(invoice_id_for(NOV), made[0].number)}
    assert made[0].number.endswith("-0001")
    assert drafts.create_draft(org, DEC, NOW).number.endswith("-0002")  # no number was spent by the race
