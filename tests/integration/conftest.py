"""Fixtures of the integration suite: more organisations, one on a table of its own, and a reader of what is
stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from acceptance_support import create_org
from support.tables import new_table


@pytest.fixture
def org_on_own_table(local_aws: object, tokens: dict[str, str]) -> Iterator[str]:
    """A fresh organisation on a table of the test's own, for a test that runs the month-end job: the job
    finalizes every draft of its table whose grace has passed, so it meets only this test's, and the drafts
    other tests left on the run's table stay as they were."""
    with new_table(local_aws, tokens, "month-end", datetime.now(UTC)):
        yield create_org()


@pytest.fixture
def make_org(local_aws: object) -> Callable[..., str]:
    """Another fresh organisation with a billing profile."""
    return create_org


@dataclass(frozen=True)
class StoredLine:
    id: str
    kind: str
    quantity: Decimal
    event_count: int
    amount_cents: int | None
    usage_period: str


@dataclass(frozen=True)
class StoredInvoice:
    id: str
    status: str
    version: int
    total_cents: int
    lines: dict[str, StoredLine]


class Store:
    """Reads the table directly (consistently), so tests can prove what was and was not written."""

    def invoices(self, org: str) -> dict[str, StoredInvoice]:
        from chalicelib.storage import keys
        from chalicelib.storage.models import InvoiceItem

        out = {}
        for item in InvoiceItem.query(keys.org_pk(org), InvoiceItem.sk.startswith(keys.INVOICE_SK_PREFIX),
                                      consistent_read=True):
            out[item.invoice_id] = StoredInvoice(item.invoice_id, item.status, item.version, item.total_cents,
                                                 self.lines(org, item.invoice_id))
        return out

    def lines(self, org: str, invoice_id: str) -> dict[str, StoredLine]:
        from chalicelib.storage import keys
        from chalicelib.storage.models import LineItemRecord

        return {
            r.line_id: StoredLine(r.line_id, r.kind, r.quantity, r.event_count, r.amount_cents, r.usage_period)
            for r in LineItemRecord.query(keys.lines_pk(org, invoice_id), consistent_read=True)
        }

    def dedup_exists(self, org: str, event_id: str) -> bool:
        from chalicelib.storage import keys
        from chalicelib.storage.models import EventRecord

        try:
            EventRecord.get(keys.event_pk(org, event_id), keys.EVENT_SK, consistent_read=True)
        except EventRecord.DoesNotExist:
            return False
        return True

    def org_exists(self, org: str) -> bool:
        from chalicelib.storage.orgs import OrgRepository

        return OrgRepository().get(org) is not None


@pytest.fixture
def store(local_aws: object) -> Store:
    return Store()
