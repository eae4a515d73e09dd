"""What the services need from storage, as small Protocols: DynamoDB implements them in
`chalicelib/storage/`, in-memory fakes in `tests/fakes/`, and one contract suite
(`tests/contract/`) runs against both so the fakes cannot drift from the table."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol

from ..domain.budgets import Alert, Budget
from ..domain.collection import Collection
from ..domain.credits import Application, Grant, Statement
from ..domain.invoice import Invoice, SyncState
from ..domain.lines import LineItem
from ..domain.notifications import CustomerEvent
from ..domain.orgs import OrgProfile
from ..domain.periods import Period
from ..domain.placement import CountedEvent, Placement, WriteOutcome
from ..domain.sync_message import SyncMessage
from ..stripe.lines import StripeLine


class InvoiceDrafts(Protocol):
    """Invoices by org and id, and the one draft of a period, created on first use.

    `create_draft` is idempotent per (org, period): racing creators all get the same invoice, and
    the org's invoice numbers stay consecutive (one number per period, never skipped or reused).
    """

    def get(self, org: str, invoice_id: str) -> Invoice | None: ...

    def create_draft(self, org: str, period: Period, now: datetime) -> Invoice: ...


class SyncedInvoices(Protocol):
    """An invoice, its lines, and the record of its copy in Stripe.

    `record_sync` writes only while the invoice keeps the status it was read with and, when a sync was
    requested, the same request time: a status change or a newer request makes it return False and
    change nothing. `note_sync_error` changes nothing once the invoice is synced. `record_stripe_invoice`
    raises Conflict when the invoice does not exist.
    """

    def get(self, org: str, invoice_id: str) -> Invoice | None: ...

    def lines(self, org: str, invoice_id: str) -> list[LineItem]: ...

    def record_sync(self, invoice: Invoice, state: SyncState, now: datetime, *, error: str | None = None,
                    stripe_invoice_id: str | None = None, stripe_number: str | None = None,
                    hosted_invoice_url: str | None = None, invoice_pdf: str | None = None,
                    count_attempt: bool = False) -> bool: ...

    def note_sync_error(self, invoice: Invoice, error: str, now: datetime) -> None: ...

    def record_stripe_invoice(self, invoice: Invoice, stripe_invoice_id: str) -> None: ...


class ReconciledInvoices(Protocol):
    """What reconciliation reads and writes of invoices: those waiting in one state, their lines, and the
    verdict (`record_sync`, guarded as in `SyncedInvoices`).

    `by_state` reads the table's state index. An invoice sits in one partition of it: `draft` or
    `finalizing` while it is one; otherwise `sync_pending` or `sync_failed` while its sync is, else its
    status (`finalized`, `paid`, `void`, `uncollectible`). With `before_period`, only invoices of earlier
    periods. Ordered by period, then org. The index is eventually consistent: a change just written may
    not show yet.
    """

    def by_state(self, state: str, before_period: Period | None = None) -> Iterable[Invoice]: ...

    def lines(self, org: str, invoice_id: str) -> list[LineItem]: ...

    def record_sync(self, invoice: Invoice, state: SyncState, now: datetime, *, error: str | None = None,
                    stripe_invoice_id: str | None = None, stripe_number: str | None = None,
                    hosted_invoice_url: str | None = None, invoice_pdf: str | None = None,
                    count_attempt: bool = False) -> bool: ...


class SyncQueue(Protocol):
    """The sync queue. `enqueue_sync` sends every message or raises; it does not deduplicate (the sync,
    which looks before it acts, makes a repeated message harmless)."""

    def enqueue_sync(self, messages: list[SyncMessage]) -> None: ...


class OrgProfiles(Protocol):
    """Billing profiles. An org's Stripe customer id, once stored, is never replaced by another:
    storing a different one raises (storing the same one again is a no-op)."""

    def get(self, org: str) -> OrgProfile | None: ...

    def get_many(self, orgs: set[str]) -> dict[str, OrgProfile]: ...

    def set_stripe_customer(self, org: str, customer_id: str) -> None: ...


class UsageLedger(Protocol):
    """Where accepted usage is written. Each event is claimed once (its dedup record) and counted on its
    line in the same step, and only while the line's invoice is a draft: an event already claimed answers
    DUPLICATE and changes nothing; one whose invoice is no longer a draft answers INVOICE_CLOSED, is not
    claimed and changes nothing. `dedup_records` says where claimed events were counted."""

    def write(self, placements: list[Placement], now: datetime) -> dict[tuple[str, str], WriteOutcome]: ...

    def dedup_records(self, events: list[tuple[str, str]]) -> dict[tuple[str, str], CountedEvent]: ...


class SyncLeases(Protocol):
    """One holder per invoice at a time. `acquire` succeeds when the lease is free, expired (strictly
    before `now`, to the millisecond), or already the caller's; `release` frees it only for its owner."""

    def acquire(self, org: str, invoice_id: str, owner: str, now: datetime, ttl: timedelta) -> bool: ...

    def release(self, org: str, invoice_id: str, owner: str) -> None: ...


class StripeInvoiceView(Protocol):
    """What the sync reads of a Stripe invoice."""

    @property
    def id(self) -> str: ...

    @property
    def status(self) -> str | None: ...

    @property
    def total(self) -> int: ...

    @property
    def currency(self) -> str: ...


class StripeInvoices(Protocol):
    """The Stripe calls the sync makes. Failures arrive sorted: RetryableSyncError or PermanentSyncError
    (`chalicelib/stripe/errors.py`)."""

    def find_customer(self, org: str, email: str) -> str | None: ...

    def create_customer(self, org: str, name: str, email: str) -> str: ...

    def retrieve_invoice(self, invoice_id: str) -> StripeInvoiceView: ...

    def retrieve_invoice_if_exists(self, invoice_id: str) -> StripeInvoiceView | None: ...

    def find_invoice(self, customer: str, org: str, our_invoice_id: str) -> StripeInvoiceView | None: ...

    def create_invoice(self, customer: str, org: str, our_invoice_id: str, number: str, currency: str,
                       period: str, collection: Collection) -> StripeInvoiceView: ...

    def line_keys(self, stripe_invoice_id: str) -> dict[str, int]: ...

    def add_lines(self, stripe_invoice_id: str, org: str, our_invoice_id: str,
                  lines: list[StripeLine]) -> StripeInvoiceView: ...

    def finalize(self, stripe_invoice_id: str, org: str, our_invoice_id: str) -> StripeInvoiceView: ...

    def void(self, stripe_invoice_id: str, org: str, our_invoice_id: str) -> StripeInvoiceView: ...

    def delete_draft(self, stripe_invoice_id: str) -> None: ...


# A part of a transaction that another port commits with its own writes: DynamoDB's adapters hand a function
# that adds its operations to a pynamodb TransactWrite (finalize spends credit in the same transaction that
# makes the invoice final).
TransactionPart = Callable[[Any], None]


class Credits(Protocol):
    """Prepaid credit grants and their ledger. `add_grant` writes a grant once per id (False when it
    exists); `expire` takes what a grant has left only while it is as the caller read it (False when it
    moved); `expiring` lists grants with something left whose expiry is at or before an ISO time. Spending,
    carrying over and restoring are parts of a finalize's or a void's transaction."""

    def add_grant(self, grant: Grant, now: datetime) -> bool: ...

    def grant(self, org: str, grant_id: str) -> Grant | None: ...

    def grants(self, org: str) -> list[Grant]: ...

    def statement(self, org: str) -> Statement: ...

    def expiring(self, before: str) -> Iterator[tuple[str, str]]: ...

    def expire(self, grant: Grant, now: datetime) -> bool: ...

    def carrying(self, invoice_id: str, grant: Grant, line: LineItem, now: datetime) -> TransactionPart: ...

    def applying(self, org: str, invoice_id: str, applications: list[Application], lines: list[LineItem],
                 now: datetime) -> TransactionPart: ...

    def restoring(self, org: str, invoice_id: str, restores: list[Application], revoked: Grant | None,
                  now: datetime) -> TransactionPart: ...


class InvoiceReads(Protocol):
    """An invoice and its lines, read consistently (a write just made shows); None when there is none."""

    def get(self, org: str, invoice_id: str) -> Invoice | None: ...

    def lines(self, org: str, invoice_id: str) -> list[LineItem]: ...


class Budgets(Protocol):
    """An org's monthly budget, one per org. `put` replaces it whole (the admin's latest word wins; alerts
    already recorded stay). `get_many` reads many orgs at once and leaves out those without a budget."""

    def get(self, org: str) -> Budget | None: ...

    def get_many(self, orgs: set[str]) -> dict[str, Budget]: ...

    def put(self, budget: Budget) -> None: ...


class Alerts(Protocol):
    """Spend alerts, at most one per (org, period, kind, threshold).

    `record` stores the alert together with its customer event, both or neither, and only while neither
    exists: True when this call stored them; False, with nothing changed, when the alert or the event is there
    already, so concurrent evaluations of one spend, a redelivered batch and a replay of the stream all race
    for one conditional write and exactly one wins. `for_period` reads consistently (an alert just recorded
    shows), in the order of their positions. `history` pages through the org's alerts, newest period first
    (within a period, by kind, then threshold key, descending), and returns, when there is more, the last
    alert's position in the table, `ALERT#{period}#{kind}#{threshold}`, which the next call takes as `after`.
    """

    def for_period(self, org: str, period: str) -> list[Alert]: ...

    def history(self, org: str, limit: int, after: str | None) -> tuple[list[Alert], str | None]: ...

    def record(self, alert: Alert, event: CustomerEvent) -> bool: ...


class Notices(Protocol):
    """Customer events, each stored once under its id (derived from its cause); storing one is what publishes
    it (the table's stream fans it out to the org's endpoints). `publish` stores the event unless one with its
    id exists: True when this call stored it; a repeat or a replay returns False and changes nothing, even if
    it carries other data. `get` reads consistently; None when there is none (or it expired)."""

    def publish(self, event: CustomerEvent) -> bool: ...

    def get(self, org: str, event_id: str) -> CustomerEvent | None: ...
