"""An in-memory `Credits`: grants written once per id, a ledger entry and a balance for every movement, the
expiry listing, and an expiry that refuses a grant that moved since it was read.

Spending, carrying over and restoring are parts of another port's transaction (`TransactionPart`): here each
adds its conditions and writes to a `MemoryTransaction` (`fakes/transaction.py`), checked and applied with the
invoice's own, all or none. `parts` lists the ones handed out, so a test can see what a finalize or a void
would commit, and commit it (`transaction.commit`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime

from chalicelib.domain.credits import Application, Balance, Entry, Grant, Movement, Statement, check_one_way, entry_id
from chalicelib.domain.lines import LineItem
from chalicelib.domain.periods import utc_iso
from chalicelib.services.ports import TransactionPart

from .invoices import MemoryInvoices
from .transaction import MemoryTransaction


class MemoryCredits:
    def __init__(self, invoices: MemoryInvoices | None = None) -> None:
        self._invoices = invoices  # where the lines a finalize's credit adds are written (None: nowhere)
        self._grants: dict[tuple[str, str], Grant] = {}
        self._entries: dict[str, list[Entry]] = {}
        self._balances: dict[str, Balance] = {}
        self.parts: list[tuple[str, TransactionPart]] = []  # ("apply" | "carry" | "restore", the part)

    # -- reads -------------------------------------------------------------------------------------
    def grant(self, org: str, grant_id: str) -> Grant | None:
        return self._grants.get((org, grant_id))

    def grants(self, org: str) -> list[Grant]:
        return [grant for (owner, _), grant in sorted(self._grants.items()) if owner == org]

    def statement(self, org: str) -> Statement:
        return Statement(self._balances.get(org, Balance()), sorted(self.grants(org), key=lambda g: g.order),
                         sorted(self._entries.get(org, []), key=lambda e: (e.at, e.id)))

    def expiring(self, before: str) -> Iterator[tuple[str, str]]:
        for (org, grant_id), grant in sorted(self._grants.items()):
            if grant.expires_at is not None and grant.remaining_cents > 0 and utc_iso(grant.expires_at) <= before:
                yield org, grant_id

    # -- writes ------------------------------------------------------------------------------------
    def add_grant(self, grant: Grant, now: datetime) -> bool:
        if (grant.org, grant.id) in self._grants:
            return False
        self._create(grant, now)
        return True

    def expire(self, grant: Grant, now: datetime) -> bool:
        stored = self._grants.get((grant.org, grant.id))
        if stored is None or (stored.version, stored.remaining_cents) != (grant.version, grant.remaining_cents):
            return False
        self._expire(stored, f"v{grant.version}", now, None)
        return True

    def carrying(self, invoice_id: str, grant: Grant, line: LineItem, now: datetime) -> TransactionPart:
        def part(tx: MemoryTransaction) -> None:
            key = (grant.org, grant.id)
            tx.check(f"carried-over grant {grant.id}", lambda: key not in self._grants)
            tx.write(lambda: self._create(grant, now))
            self._write_lines(tx, grant.org, invoice_id, [line])
        self.parts.append(("carry", part))
        return part

    def applying(self, org: str, invoice_id: str, applications: list[Application], lines: list[LineItem],
                 now: datetime) -> TransactionPart:
        def part(tx: MemoryTransaction) -> None:
            for application in applications:
                read, cents = application.grant, application.amount_cents
                # As the table's condition: the grant is as it was read, and still covers what is spent.
                tx.check(f"grant {read.id}", lambda read=read, cents=cents: self._unmoved(read, cents))
                tx.write(lambda read=read, cents=cents: self._move(
                    org, read.id, -cents, Entry(entry_id(Movement.APPLY, read.id, invoice_id), Movement.APPLY,
                                                read.id, cents, now, invoice_id)))
            self._write_lines(tx, org, invoice_id, lines)
        self.parts.append(("apply", part))
        return part

    def restoring(self, org: str, invoice_id: str, restores: list[Application], revoked: Grant | None,
                  now: datetime) -> TransactionPart:
        check_one_way(invoice_id, restores, revoked)

        def part(tx: MemoryTransaction) -> None:
            for restore in restores:
                grant_id, cents = restore.grant.id, restore.amount_cents
                # As the table's condition: what is given back never takes a grant above what was granted.
                tx.check(f"grant {grant_id}",
                         lambda grant_id=grant_id, cents=cents: self._restorable(org, grant_id, cents))
                tx.write(lambda grant_id=grant_id, cents=cents: self._move(
                    org, grant_id, cents, Entry(entry_id(Movement.RESTORE, grant_id, invoice_id), Movement.RESTORE,
                                                grant_id, cents, now, invoice_id)))
            if revoked is not None:
                # As the table's condition: the carried-over credit is unspent, so all of it can be taken back.
                tx.check(f"grant {revoked.id}", lambda: self._unmoved(revoked, revoked.remaining_cents))
                tx.write(lambda: self._expire(self._grants[(org, revoked.id)], f"void-{invoice_id}", now,
                                              invoice_id))
        self.parts.append(("restore", part))
        return part

    def _write_lines(self, tx: MemoryTransaction, org: str, invoice_id: str, lines: list[LineItem]) -> None:
        invoices = self._invoices
        if invoices is not None and lines:
            tx.write(lambda: invoices.write_lines(org, invoice_id, lines))

    def _restorable(self, org: str, grant_id: str, cents: int) -> bool:
        stored = self._grants.get((org, grant_id))
        return stored is not None and stored.remaining_cents + cents <= stored.amount_cents

    def _unmoved(self, read: Grant, cents: int) -> bool:
        stored = self._grants.get((read.org, read.id))
        return stored is not None and stored.version == read.version and stored.remaining_cents >= cents

    # -- the table's effects -----------------------------------------------------------------------
    def _create(self, grant: Grant, now: datetime) -> None:
        self._grants[(grant.org, grant.id)] = replace(grant, remaining_cents=grant.amount_cents, version=1)
        self._record(grant.org, Entry(entry_id(Movement.GRANT, grant.id, grant.id), Movement.GRANT, grant.id,
                                      grant.amount_cents, now))

    def _move(self, org: str, grant_id: str, cents: int, entry: Entry) -> None:
        stored = self._grants[(org, grant_id)]
        self._grants[(org, grant_id)] = replace(stored, remaining_cents=stored.remaining_cents + cents,
                                                version=stored.version + 1)
        self._record(org, entry)

    def _expire(self, grant: Grant, cause: str, now: datetime, invoice_id: str | None) -> None:
        self._grants[(grant.org, grant.id)] = replace(grant, remaining_cents=0, version=grant.version + 1)
        self._record(grant.org, Entry(entry_id(Movement.EXPIRE, grant.id, cause), Movement.EXPIRE, grant.id,
                                      grant.remaining_cents, now, invoice_id))

    def _record(self, org: str, entry: Entry) -> None:
        self._entries.setdefault(org, []).append(entry)
        balance = self._balances.get(org, Balance())
        field = {Movement.GRANT: "granted_cents", Movement.APPLY: "applied_cents",
                 Movement.EXPIRE: "expired_cents", Movement.RESTORE: "restored_cents"}[entry.movement]
        self._balances[org] = replace(balance, **{field: getattr(balance, field) + entry.amount_cents})
