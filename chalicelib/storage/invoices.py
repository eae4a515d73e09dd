"""The invoice repository: headers, lines and sync state of invoices, for callers that need more than one.

Each part is its own room (invoice_headers.py, invoice_lines.py, invoice_sync_state.py); a caller
that needs one of them takes that class instead.
"""

from __future__ import annotations

from .invoice_headers import InvoiceHeaders
from .invoice_lines import InvoiceLines
from .invoice_sync_state import InvoiceSyncState


class InvoiceRepository(InvoiceHeaders, InvoiceLines, InvoiceSyncState):
    pass
