"""CSV answers: an invoice's lines and a usage series, as `text/csv`, with stable column names.

A client asks with `?format=csv` or an `Accept` header that prefers `text/csv` to JSON. The
columns below are part of the API: new ones are only ever appended. Money is integer cents
(no float, no currency symbol), quantities are plain decimals, times are ISO 8601 UTC.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chalice.app import Response

from ..domain.periods import utc_iso
from ..domain.usage_series import UsageSeries
from ..services.invoices import InvoiceView
from .errors import ApiError
from .insight import plain

INVOICE_LINE_COLUMNS = (
    "invoice_id", "invoice_number", "invoice_period", "invoice_status", "line_id", "kind", "category", "app",
    "region", "resource", "description", "quantity", "unit", "display_quantity", "display_unit", "unit_price",
    "price_per", "price_unit", "free_quantity", "amount_cents", "currency", "usage_period", "late",
    "first_usage_at", "last_usage_at",
)
USAGE_COLUMNS = ("period_start", "period_end", "granularity", "group_by", "group", "label", "display_unit",
                 "quantity", "cost_cents", "currency")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def wants_csv(params: Mapping[str, str] | None, headers: Mapping[str, str]) -> bool:
    fmt = (params or {}).get("format")
    if fmt is not None:
        if fmt not in ("json", "csv"):
            raise ApiError(422, "validation_failed", "`format` must be json or csv", {"allowed": ["json", "csv"]})
        return fmt == "csv"
    ranked = [part.split(";", 1)[0].strip().lower() for part in headers.get("accept", "").split(",")]
    csv_at = ranked.index("text/csv") if "text/csv" in ranked else None
    json_at = ranked.index("application/json") if "application/json" in ranked else None
    return csv_at is not None and (json_at is None or csv_at < json_at)


def _text(value: str | None) -> str:
    """Free text that a spreadsheet would run as a formula gets a leading apostrophe."""
    value = value or ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _render(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def invoice_lines_csv(view: InvoiceView) -> str:
    invoice = view.invoice
    rows = [
        (invoice.id, invoice.number, str(invoice.period), invoice.status.value, line.id, line.kind.value,
         line.category.value, line.app or "", line.region or "", line.resource or "", _text(line.description),
         plain(line.quantity), line.unit, plain(line.display_quantity), line.display_unit, plain(line.unit_price),
         plain(line.price_per), line.price_unit, plain(line.free_quantity), line.amount_cents, invoice.currency,
         line.usage_period, "true" if line.kind.value == "late_usage" else "false",
         utc_iso(line.first_usage_at) if line.first_usage_at else "",
         utc_iso(line.last_usage_at) if line.last_usage_at else "")
        for line in view.lines
    ]
    return _render(INVOICE_LINE_COLUMNS, rows)


def usage_csv(usage: UsageSeries, currency: str) -> str:
    """One row per period, group and display unit that had usage (a group can have several units)."""
    step = usage.range.granularity.step
    rows = []
    for index, start in enumerate(usage.range.periods()):
        for series in usage.series:
            point = series.points[index]
            for unit, quantity in sorted(point.quantities.items()):
                rows.append((utc_iso(start), utc_iso(start + step), usage.range.granularity.value,
                             usage.group_by.value, _text(series.group), _text(series.label), unit, plain(quantity),
                             point.unit_costs[unit], currency))
    return _render(USAGE_COLUMNS, rows)


def csv_response(body: str, filename: str) -> Response:
    return Response(body=body, status_code=200, headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{filename}"',
    })
