"""What the services need from storage, as small Protocols: DynamoDB implements them in
`chalicelib/storage/`, in-memory fakes in `tests/fakes/`, and one contract suite
(`tests/contract/`) runs against both so the fakes cannot drift from the table."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from ..domain.invoice import Invoice
from ..domain.periods import Period


class InvoiceDrafts(Protocol):
    """Invoices by org and id, and the one draft of a period, created on first use.

    `create_draft` is idempotent per (org, period): racing creators all get the same invoice, and
    the org's invoice numbers stay consecutive (one number per period, never skipped or reused).
    """

    def get(self, org: str, invoice_id: str) -> Invoice | None: ...

    def create_draft(self, org: str, period: Period, now: datetime) -> Invoice: ...
