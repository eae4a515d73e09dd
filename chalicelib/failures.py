"""DynamoDB's failures told apart in one place: a failed condition, a transient refusal, our bug.

A transaction is cancelled for reasons listed per action (a failed condition is the caller's
business; a conflict with another transaction or throttling is transient). A call can also
fail as a whole: throttled, the service briefly unavailable, or no answer at all (a timeout, a
dropped connection). Those are transient too: the write either did not happen or, for a
transaction retried with its token or guarded by conditions, will not happen twice.
"""

from __future__ import annotations

from pynamodb.exceptions import PynamoDBException

CONDITION_FAILED = "ConditionalCheckFailedException"
TRANSIENT_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
TRANSIENT_CODES = frozenset({
    "TransactionInProgressException", "TransactionConflictException", "ThrottlingException",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded", "InternalServerError",
    "ServiceUnavailable",
})


def condition_failed(error: PynamoDBException) -> bool:
    """A single write's condition did not hold (transactions say so per action: reason_codes)."""
    return _answer(error).get("Code") == CONDITION_FAILED


def reason_codes(error: PynamoDBException) -> list[str]:
    """The cancellation reasons of a transaction, 'None' for actions that did not fail."""
    reasons = getattr(error, "cancellation_reasons", None) or []
    return [reason.code if reason is not None else "None" for reason in reasons]


def is_transient(error: PynamoDBException) -> bool:
    """True when retrying the same request later can succeed: nothing about the data refused it."""
    codes = [code for code in reason_codes(error) if code != "None"]
    if codes:
        return all(code in TRANSIENT_REASONS for code in codes)
    code = _answer(error).get("Code")
    return code in TRANSIENT_CODES or (code is None and error.cause is not None)


def describe(error: PynamoDBException) -> dict[str, object]:
    """What a log line needs to tell one failure from another."""
    answer = _answer(error)
    return {"cause_code": answer.get("Code"), "cause_message": answer.get("Message"),
            "cause": type(error.cause).__name__ if error.cause is not None else None,
            "reasons": reason_codes(error)}


def _answer(error: PynamoDBException) -> dict[str, str]:
    # Not error.cause_response_code: botocore's errors without an answer (a timeout) carry
    # `response = None`, on which that property fails.
    response = getattr(error.cause, "response", None) or {}
    return response.get("Error") or {}
