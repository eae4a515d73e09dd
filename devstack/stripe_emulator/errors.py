"""Stripe-shaped API errors.

Every failure the emulator reports is a ``StripeError``; the HTTP layer turns
it into Stripe's JSON envelope ``{"error": {"type", "code", "message",
"param"}}`` with the status Stripe uses, so stripe-python maps it to the same
exception class it would raise against the live API.
"""

from __future__ import annotations

from typing import Any

RATE_LIMIT_MESSAGE = (
    "Request rate limit exceeded. You can learn more about rate limits here "
    "https://stripe.com/docs/rate-limits."
)
LOCK_TIMEOUT_MESSAGE = (
    "This object cannot be accessed right now because another API request or "
    "Stripe process is currently accessing it. If you see this error "
    "intermittently, retry the request. If you see this error frequently and "
    "are making multiple concurrent requests to a single object, make your "
    "requests serially or at a lower rate. See "
    "https://stripe.com/docs/rate-limits#object-lock-timeouts for more details."
)
API_ERROR_MESSAGE = (
    "Sorry, something went wrong. We've already been notified of the problem, "
    "but if you need any help, you can reach us at support.stripe.com/contact."
)


class StripeError(Exception):
    """An error answered to the client in Stripe's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        stored: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})
        # Stripe saves the result of an idempotent request only once the
        # endpoint started executing: validation failures are not replayed.
        self.stored = stored

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            err["code"] = self.code
        if self.param is not None:
            err["param"] = self.param
        return {"error": err}


def invalid_request(
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    status: int = 400,
) -> StripeError:
    return StripeError(status, message, code=code, param=param)


def param_error(
    message: str, *, code: str | None, param: str | None
) -> StripeError:
    """A request that failed validation before anything was executed."""
    return StripeError(400, message, code=code, param=param, stored=False)


def no_such(kind: str, object_id: str, *, param: str = "id",
            status: int = 404) -> StripeError:
    return StripeError(
        status,
        f"No such {kind}: '{object_id}'",
        code="resource_missing",
        param=param,
    )


def rate_limited() -> StripeError:
    # Plain rate limiting carries no Stripe-Should-Retry header, so
    # stripe-python does not retry it on its own.
    return StripeError(429, RATE_LIMIT_MESSAGE, code="rate_limit", stored=False)


def lock_timeout() -> StripeError:
    # Stripe asks clients to retry lock timeouts; stripe-python honours the
    # header and retries when max_network_retries > 0.
    return StripeError(
        429,
        LOCK_TIMEOUT_MESSAGE,
        code="lock_timeout",
        headers={"Stripe-Should-Retry": "true"},
        stored=False,
    )


def api_error(status: int = 500) -> StripeError:
    return StripeError(status, API_ERROR_MESSAGE, type="api_error", stored=False)


def authentication_error(message: str) -> StripeError:
    return StripeError(401, message, type="invalid_request_error", stored=False)
