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
from ..domain.invoice import Invoice, InvoiceStatus, SyncState
from ..domain.lines import LineItem, Totals
from ..domain.notifications import CustomerEvent
from ..domain.orgs import OrgProfile
from ..domain.periods import Period
from ..domain.placement import CountedEvent, Placement, WriteOutcome
from ..domain.plans import PlanChange, Timeline
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


class Invoices(Protocol):
    """What finalize, void and one-off items read and write of invoices.

    `transition` moves an invoice on only while it has the status and version it was read with (and, unless
    it requests a sync, the same sync state): else InvalidTransition. With `rollup_sign` ±1 the month totals
    take the invoice's totals in the same transaction; `along` joins other ports' parts to it (the credit a
    finalize spends, the plan timeline it checks). The transaction commits every part or none: when only a
    joined part's condition failed, StaleRead says to read that again and retry. `freeze_lines` stores each
    existing line's free quantity and amount. `add_fixed_line` adds a line once per id (False when the id is
    taken) and only to a draft still at the version it was read with (else InvalidTransition); it bumps the
    version, so two items added on one read cannot both pass a check made on it. `by_state` and `page` read
    as in `ReconciledInvoices` and `InvoiceDrafts`; `open_month` gives a closed month zero totals, so it
    reads as zero rather than missing (repeatable, and it commutes with the totals' additions).
    """

    def get(self, org: str, invoice_id: str) -> Invoice | None: ...

    def page(self, org: str, limit: int, cursor: str | None) -> tuple[list[Invoice], str | None]: ...

    def lines(self, org: str, invoice_id: str) -> list[LineItem]: ...

    def by_state(self, state: str, before_period: Period | None = None) -> Iterable[Invoice]: ...

    def transition(self, invoice: Invoice, target: InvoiceStatus, now: datetime, *, totals: Totals | None = None,
                   line_count: int | None = None, due_at: datetime | None = None,
                   sync_state: SyncState | None = None, rollup_sign: int = 0,
                   along: TransactionPart | None = None) -> Invoice: ...

    def freeze_lines(self, org: str, invoice_id: str, priced: list[LineItem]) -> None: ...

    def add_fixed_line(self, invoice: Invoice, line: LineItem, client_id: str, now: datetime) -> bool: ...

    def open_month(self, period: Period) -> None: ...


class RecurringLines(Protocol):
    """What finalize needs of subscriptions: bring a draft's recurring lines up to date (the timeline version
    they reflect; None without a plan), and a part for the closing transaction that cancels it when a plan
    change was recorded after that version (None: nothing to check)."""

    def materialize(self, org: str, now: datetime) -> int | None: ...

    def unchanged_since(self, org: str, version: int | None) -> TransactionPart | None: ...


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


class Timelines(Protocol):
    """The plan timeline of each org (its recorded plan changes, at a version), and the recurring lines it puts on
    invoices (the invoice's lines whose ids start with `domain.proration.RECURRING_LINE_PREFIX`).

    `get` reads the timeline as it is now. `record` adds a change once per change id: a change id already on the
    timeline changes nothing and answers the stored timeline with False (the caller compares the two); otherwise
    the change is added and the version goes up by exactly one, guarded by the version it read, so concurrent
    changes never lose each other. `subscribed` lists every org with a timeline from an index that may lag a
    moment behind a write. `mark_materialized` records `materialized_mark(version, period)` only while the
    timeline is still at `version` (otherwise it changes nothing: the newer version's writer marks it).
    `recurring_lines` reads an invoice's recurring lines, and only those. `write_lines` puts and deletes the
    recurring lines of one invoice, all or none (DynamoDB: per transaction of up to 98 writes, each guarded
    alike), only while the timeline is at `version` (else StaleRead) and the invoice is a draft (else
    InvoiceClosed, which wins when both fail); a refused write changes nothing. `put` and `delete` name different
    lines (the table refuses a transaction with two actions on one item). `guard` hands a part for another
    port's transaction that cancels it when the timeline is no longer at `version`.
    """

    def get(self, org: str) -> Timeline | None: ...

    def subscribed(self) -> Iterable[Timeline]: ...

    def record(self, org: str, change: PlanChange, now: datetime) -> tuple[Timeline, bool]: ...

    def mark_materialized(self, org: str, version: int, period: Period) -> None: ...

    def recurring_lines(self, org: str, invoice_id: str) -> list[LineItem]: ...

    def guard(self, org: str, version: int) -> TransactionPart: ...

    def write_lines(self, org: str, invoice_id: str, version: int, put: list[LineItem], delete: list[str],
                    now: datetime) -> None: ...


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
