"""The one error envelope: {"error": {"code", "message", "details"}} for every 4xx and 5xx."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from chalice.app import Response
from pydantic import ValidationError
from pynamodb.exceptions import PynamoDBException

from ..domain.errors import Busy, Conflict, DomainError, NotFound, ValidationFailed
from ..domain.identifiers import UnsafeKeyPart
from ..failures import describe, is_transient
from ..observability import logger


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


def unauthorized(message: str = "a valid bearer token is required") -> ApiError:
    return ApiError(401, "unauthorized", message)


def forbidden(message: str = "this token may not do that") -> ApiError:
    return ApiError(403, "forbidden", message)


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None,
                   headers: Mapping[str, str | list[str]] | None = None) -> Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    sent: dict[str, str | list[str]] = {**(headers or {}), "Content-Type": "application/json"}
    if status == 401:
        sent["WWW-Authenticate"] = "Bearer"
    return Response(body=json.dumps(body), status_code=status, headers=sent)


def _status_for(error: DomainError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Conflict):
        return 409
    if isinstance(error, ValidationFailed):
        return 422
    return 400


def _code_for(error: DomainError) -> str:
    # The domain's plain refusal (a cursor or month it cannot read, a bad signature) is input that fails
    # validation like any other, so clients see one code for it; named refusals (unknown_meter) keep theirs.
    return "validation_failed" if type(error) is ValidationFailed else error.code


def validation_details(error: ValidationError) -> dict[str, Any]:
    return {
        "fields": [
            {"field": ".".join(str(part) for part in item["loc"]), "problem": item["msg"]}
            for item in error.errors(include_url=False, include_context=False, include_input=False)
        ]
    }


def with_errors(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every error a client can cause into the envelope; anything else stays a 500 without details."""

    @functools.wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except ApiError as error:
            return error_response(error.status, error.code, error.message, error.details)
        except ValidationError as error:
            return error_response(422, "validation_failed", "the request does not match the schema",
                                  validation_details(error))
        except UnsafeKeyPart:
            return error_response(422, "validation_failed", "an identifier has characters that are not allowed")
        except Busy as error:
            logger.warning("storage busy", extra={"error": str(error)})
            return error_response(503, "busy", "the service is busy; retry with backoff")
        except DomainError as error:
            return error_response(_status_for(error), _code_for(error), error.message, error.details)
        except PynamoDBException as error:
            if not is_transient(error):
                raise  # a bug of ours: the plain 500, logged with its traceback
            logger.warning("storage unavailable", extra=describe(error))
            return error_response(503, "busy", "the service is busy; retry with backoff")

    return wrapped
