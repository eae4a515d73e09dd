"""Domain errors. Each has a stable machine-readable code that the API exposes."""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A request the domain refuses. Each kind names its code where it is declared: `code="..."`."""

    code: ClassVar[str] = "domain_error"

    def __init_subclass__(cls, code: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:  # without one, a kind answers with its parent's code
            cls.code = code

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ValidationFailed(DomainError, code="invalid_request"):
    """The input breaks a rule: a field out of range, a cursor or month that cannot be read."""


class NotFound(DomainError, code="not_found"):
    """What was asked for does not exist, or is not the caller's."""


class Conflict(DomainError, code="conflict"):
    """The request contradicts what is stored."""


class InvalidTransition(Conflict, code="invalid_transition"):
    """The status it is in does not allow that move."""


class StaleRead(Conflict, code="changed_meanwhile"):
    """A guarded write found that what it was computed from changed meanwhile: read again and retry."""


class InvoiceClosed(Conflict, code="invoice_closed"):
    """The invoice is no longer a draft, so it cannot take new lines."""


class Busy(DomainError, code="busy"):
    """The store kept refusing under contention or was briefly unavailable: retry with backoff."""


class UnknownMeter(ValidationFailed, code="unknown_meter"):
    """The usage names a meter the catalog does not have."""


class UnknownRegion(ValidationFailed, code="unknown_region"):
    """The usage names a region the catalog does not have."""
