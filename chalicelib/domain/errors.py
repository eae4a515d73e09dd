"""Domain errors. Each has a stable machine-readable code that the API exposes."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ValidationFailed(DomainError):
    code = "invalid_request"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class StaleRead(Conflict):
    """A guarded write found that what it was computed from changed meanwhile: read again and retry."""

    code = "changed_meanwhile"


class InvoiceClosed(Conflict):
    """The invoice is no longer a draft, so it cannot take new lines."""

    code = "invoice_closed"


class Busy(DomainError):
    """The store kept refusing under contention or was briefly unavailable: retry with backoff."""

    code = "busy"


class UnknownMeter(ValidationFailed):
    code = "unknown_meter"


class UnknownRegion(ValidationFailed):
    code = "unknown_region"
