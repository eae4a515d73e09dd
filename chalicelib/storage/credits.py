"""Credit grants, the ledger, and the balance totals of one org, in the `ORG#{org}#CREDITS` partition.

Every movement is one transaction that writes its ledger entry (id derived from its cause,
put only if absent), changes the grant's remaining amount under a condition that keeps it
between zero and what was granted, and ADDs to the balance item's running totals; so the
balance is always granted - applied - expired + restored and always the sum of what the
grants have left. Applying and restoring are not transactions of their own: they return the
writes for the invoice's `finalizing -> finalized` or `-> void` transaction, so the credit
moves exactly when the invoice does, and a second finalize or void of the same invoice
(which fails its status check) moves nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from ..domain.credits import (
    Application,
    Balance,
    CreditReason,
    Entry,
    Grant,
    Movement,
    Statement,
    check_one_way,
    entry_id,
)
from ..domain.lines import LineItem
from ..domain.periods import utc_iso
from . import keys
from .convert import record_from_line
from .invoice_headers import Write
from .items import get_or_none
from .models import CreditBalanceItem, CreditEntryItem, CreditGrantItem


def _grant(item: CreditGrantItem) -> Grant:
    return Grant(item.grant_id, item.org, item.amount_cents, item.remaining_cents, CreditReason(item.reason),
                 item.description, item.granted_at, item.expires_at, item.client_id, item.version)


def _entry(item: CreditEntryItem) -> Entry:
    return Entry(item.entry_id, Movement(item.movement), item.grant_id, item.amount_cents, item.at, item.invoice_id)


def _balance(item: CreditBalanceItem | None) -> Balance:
    if item is None:
        return Balance()
    return Balance(item.granted_cents, item.applied_cents, item.expired_cents, item.restored_cents)


def _expiry_actions(grant: Grant, remaining: int) -> list[Action]:
    """The sparse expiry index lists a grant only while it has something left that can expire."""
    if grant.expires_at is None or remaining <= 0:
        return [CreditGrantItem.gsi1pk.remove(), CreditGrantItem.gsi1sk.remove()]
    return [CreditGrantItem.gsi1pk.set(keys.CREDIT_EXPIRY_GSI_PK),
            CreditGrantItem.gsi1sk.set(keys.credit_expiry_gsi_sk(utc_iso(grant.expires_at), grant.org, grant.id))]


def _entry_put(tx: TransactWrite, org: str, entry: Entry) -> None:
    tx.save(CreditEntryItem(keys.credits_pk(org), keys.entry_sk(entry.id), org=org, entry_id=entry.id,
                            movement=entry.movement.value, grant_id=entry.grant_id, amount_cents=entry.amount_cents,
                            at=entry.at, invoice_id=entry.invoice_id),
            condition=CreditEntryItem.pk.does_not_exist())


def _balance_update(tx: TransactWrite, org: str, movement: Movement, amount: int) -> None:
    totals = {Movement.GRANT: CreditBalanceItem.granted_cents, Movement.APPLY: CreditBalanceItem.applied_cents,
              Movement.EXPIRE: CreditBalanceItem.expired_cents, Movement.RESTORE: CreditBalanceItem.restored_cents}
    sign = 1 if movement in (Movement.GRANT, Movement.RESTORE) else -1
    condition = None if sign > 0 else CreditBalanceItem.balance_cents >= amount
    tx.update(CreditBalanceItem(keys.credits_pk(org), keys.CREDIT_BALANCE_SK),
              actions=[CreditBalanceItem.org.set(org), totals[movement].add(amount),
                       CreditBalanceItem.balance_cents.add(sign * amount)],
              condition=condition)


class CreditRepository:
    def statement(self, org: str) -> Statement:
        entries = [_entry(item) for item in CreditEntryItem.query(
            keys.credits_pk(org), CreditEntryItem.sk.startswith(keys.ENTRY_SK_PREFIX), consistent_read=True)]
        return Statement(self.balance(org), sorted(self.grants(org), key=lambda g: g.order),
                         sorted(entries, key=lambda e: (e.at, e.id)))

    def grants(self, org: str) -> list[Grant]:
        query = CreditGrantItem.query(keys.credits_pk(org), CreditGrantItem.sk.startswith(keys.GRANT_SK_PREFIX),
                                      consistent_read=True)
        return [_grant(item) for item in query]

    def balance(self, org: str) -> Balance:
        item = get_or_none(CreditBalanceItem, keys.credits_pk(org), keys.CREDIT_BALANCE_SK)
        return _balance(item) if item is not None else Balance()

    def grant(self, org: str, grant_id: str) -> Grant | None:
        item = get_or_none(CreditGrantItem, keys.credits_pk(org), keys.grant_sk(grant_id))
        return _grant(item) if item is not None else None

    def add_grant(self, grant: Grant, now: datetime) -> bool:
        """Grant credit; False when a grant with this id exists already (the caller compares)."""
        try:
            with TransactWrite(connection=CreditGrantItem._get_connection().connection) as tx:
                self.creating(grant, now)(tx)
        except TransactWriteError as error:
            reasons = list(error.cancellation_reasons or [])
            if reasons and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
                return False
            raise
        return True

    def creating(self, grant: Grant, now: datetime) -> Write:
        """The writes of a new grant (its Put comes first in the transaction: puts precede updates)."""
        def write(tx: TransactWrite) -> None:
            item = CreditGrantItem(
                keys.credits_pk(grant.org), keys.grant_sk(grant.id), org=grant.org, grant_id=grant.id,
                amount_cents=grant.amount_cents, remaining_cents=grant.amount_cents, reason=grant.reason.value,
                description=grant.description, granted_at=grant.granted_at, expires_at=grant.expires_at,
                client_id=grant.client_id, version=1,
            )
            if grant.expires_at is not None:
                item.gsi1pk = keys.CREDIT_EXPIRY_GSI_PK
                item.gsi1sk = keys.credit_expiry_gsi_sk(utc_iso(grant.expires_at), grant.org, grant.id)
            tx.save(item, condition=CreditGrantItem.pk.does_not_exist())
            _entry_put(tx, grant.org, Entry(entry_id(Movement.GRANT, grant.id, grant.id), Movement.GRANT, grant.id,
                                            grant.amount_cents, now))
            _balance_update(tx, grant.org, Movement.GRANT, grant.amount_cents)
        return write

    def carrying(self, invoice_id: str, grant: Grant, line: LineItem, now: datetime) -> Write:
        """A negative invoice total becomes a grant, and the line that brings the invoice to zero."""
        create = self.creating(grant, now)

        def write(tx: TransactWrite) -> None:
            create(tx)
            tx.save(record_from_line(grant.org, invoice_id, line, now))
        return write

    def applying(self, org: str, invoice_id: str, applications: list[Application], lines: list[LineItem],
                 now: datetime) -> Write:
        """Spend each grant's share for this invoice, only if the grant is still as we read it."""
        def write(tx: TransactWrite) -> None:
            for application in applications:
                grant, amount = application.grant, application.amount_cents
                remaining = grant.remaining_cents - amount
                tx.update(CreditGrantItem(keys.credits_pk(org), keys.grant_sk(grant.id)),
                          actions=[CreditGrantItem.remaining_cents.set(remaining),
                                   CreditGrantItem.version.set(grant.version + 1), *_expiry_actions(grant, remaining)],
                          condition=(CreditGrantItem.version == grant.version)
                          & (CreditGrantItem.remaining_cents >= amount))
                _entry_put(tx, org, Entry(entry_id(Movement.APPLY, grant.id, invoice_id), Movement.APPLY, grant.id,
                                          amount, now, invoice_id))
            for line in lines:
                tx.save(record_from_line(org, invoice_id, line, now))
            if applications:
                _balance_update(tx, org, Movement.APPLY, sum(a.amount_cents for a in applications))
        return write

    def restoring(self, org: str, invoice_id: str, restores: list[Application], revoked: Grant | None,
                  now: datetime) -> Write:
        """Give back what an invoice used; take back what it carried over, if none of it was spent."""
        check_one_way(invoice_id, restores, revoked)

        def write(tx: TransactWrite) -> None:
            for restore in restores:
                grant, amount = restore.grant, restore.amount_cents
                tx.update(CreditGrantItem(keys.credits_pk(org), keys.grant_sk(grant.id)),
                          actions=[CreditGrantItem.remaining_cents.add(amount), CreditGrantItem.version.add(1),
                                   *_expiry_actions(grant, amount)],
                          condition=CreditGrantItem.remaining_cents <= grant.amount_cents - amount)
                _entry_put(tx, org, Entry(entry_id(Movement.RESTORE, grant.id, invoice_id), Movement.RESTORE,
                                          grant.id, amount, now, invoice_id))
            if restores:
                _balance_update(tx, org, Movement.RESTORE, sum(r.amount_cents for r in restores))
            if revoked is not None:
                self._expiring(tx, revoked, f"void-{invoice_id}", now, invoice_id)
        return write

    def expire(self, grant: Grant, now: datetime) -> bool:
        """Expire what the grant has left; False when it moved meanwhile (the next run looks again)."""
        try:
            with TransactWrite(connection=CreditGrantItem._get_connection().connection) as tx:
                self._expiring(tx, grant, f"v{grant.version}", now, None)
        except TransactWriteError as error:
            if any(r is not None and r.code in ("ConditionalCheckFailed", "TransactionConflict")
                   for r in error.cancellation_reasons or []):
                return False
            raise
        return True

    def _expiring(self, tx: TransactWrite, grant: Grant, cause: str, now: datetime, invoice_id: str | None) -> None:
        tx.update(CreditGrantItem(keys.credits_pk(grant.org), keys.grant_sk(grant.id)),
                  actions=[CreditGrantItem.remaining_cents.set(0), CreditGrantItem.version.set(grant.version + 1),
                           *_expiry_actions(grant, 0)],
                  condition=(CreditGrantItem.version == grant.version)
                  & (CreditGrantItem.remaining_cents == grant.remaining_cents))
        _entry_put(tx, grant.org, Entry(entry_id(Movement.EXPIRE, grant.id, cause), Movement.EXPIRE, grant.id,
                                        grant.remaining_cents, now, invoice_id))
        _balance_update(tx, grant.org, Movement.EXPIRE, grant.remaining_cents)

    def expiring(self, before: str) -> Iterator[tuple[str, str]]:
        """(org, grant id) of grants with something left that expire at or before the ISO time `before`."""
        condition = CreditGrantItem.gsi1sk < f"{before}$"  # '$' sorts right after the '#' that follows the time
        for item in CreditGrantItem.expiry_index.query(keys.CREDIT_EXPIRY_GSI_PK, condition):
            yield item.org, item.grant_id
