"""An invoice's lines: reading them, freezing their prices at finalize, and adding fixed charges to a draft."""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from ..domain.errors import InvalidTransition
from ..domain.invoice import Invoice, InvoiceStatus
from ..domain.lines import LineItem
from . import keys
from .convert import LINE_PRICED, line_from_record, record_from_line, stored_values
from .invoice_headers import header_key
from .models import InvoiceItem, LineItemRecord


class InvoiceLines:
    def lines(self, org: str, invoice_id: str) -> list[LineItem]:
        records = LineItemRecord.query(keys.lines_pk(org, invoice_id), consistent_read=True)
        return [line_from_record(record) for record in records]

    def freeze_lines(self, org: str, invoice_id: str, priced: list[LineItem]) -> None:
        """Store each line's free quantity and amount. Only called while the invoice is finalizing."""
        for line in priced:
            record = LineItemRecord(keys.lines_pk(org, invoice_id), keys.line_sk(line.id))
            record.update(
                actions=[attribute.set(value) for attribute, value in stored_values(line, LINE_PRICED)],
                condition=LineItemRecord.pk.exists(),
            )

    def add_fixed_line(self, invoice: Invoice, line: LineItem, client_id: str, now: datetime) -> bool:
        """Add a one-off charge or credit to a draft; False when this client id was already used."""
        record = record_from_line(invoice.org, invoice.id, line, now, client_id)
        try:
            # Bumping the header's version serialises fixed items, so two concurrent credits
            # cannot both pass the "total stays above zero" check made on the same read.
            with TransactWrite(connection=LineItemRecord._get_connection().connection) as tx:
                tx.save(record, condition=LineItemRecord.pk.does_not_exist())
                tx.update(
                    header_key(invoice),
                    actions=[InvoiceItem.version.add(1), InvoiceItem.updated_at.set(now)],
                    condition=(InvoiceItem.status == InvoiceStatus.DRAFT.value)
                    & (InvoiceItem.version == invoice.version),
                )
        except TransactWriteError as error:
            # Puts come before updates in the transaction (PynamoDB's order): the line, then the header.
            reasons = error.cancellation_reasons
            if reasons and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
                return False
            if reasons and reasons[1] is not None and reasons[1].code == "ConditionalCheckFailed":
                raise InvalidTransition(
                    "the invoice changed or is no longer a draft; read it and retry", {"invoice": invoice.id}
                ) from error
            raise
        return True
