"""DynamoDB failures: which are retried, which reach the client as 503, which stay our bug (500)."""

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from pynamodb.exceptions import CancellationReason, GetError, TransactWriteError, VerboseClientError

from chalicelib.api.errors import with_errors
from chalicelib.domain.errors import Busy
from chalicelib.domain.placement import WriteOutcome
from chalicelib.failures import is_transient
from chalicelib.storage import usage_writer


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "TransactWriteItems")


def cancelled(*codes: str | None) -> TransactWriteError:
    reasons = [CancellationReason(code=c) if c else None for c in codes]
    cause = VerboseClientError({"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"}},
                               "TransactWriteItems", cancellation_reasons=reasons)
    return TransactWriteError("Failed to write transaction items", cause)


NO_ANSWER = TransactWriteError("Failed to write transaction items", ReadTimeoutError(endpoint_url="http://ddb"))


@pytest.mark.parametrize("error, transient", [
    (NO_ANSWER, True),
    (TransactWriteError("x", client_error("ThrottlingException")), True),
    (TransactWriteError("x", client_error("InternalServerError")), True),
    (TransactWriteError("x", client_error("TransactionConflictException")), True),
    (cancelled(None, "TransactionConflict"), True),
    (cancelled(None, "ConditionalCheckFailed"), False),
    (cancelled("TransactionConflict", "ConditionalCheckFailed"), False),
    (TransactWriteError("x", client_error("ValidationException")), False),
], ids=["no-answer", "throttled", "internal", "conflict-exception", "conflict-reason", "condition",
        "condition-and-conflict", "validation"])
def test_only_failures_a_retry_can_cure_are_transient(error, transient):
    assert is_transient(error) is transient


def test_a_transient_storage_failure_answers_503_busy_and_our_own_bug_stays_a_500():
    @with_errors
    def route(error: Exception) -> dict:
        raise error

    answer = route(GetError("Failed to get item", client_error("ProvisionedThroughputExceededException")))
    assert answer.status_code == 503 and json.loads(answer.body)["error"]["code"] == "busy"
    assert route(Busy("kept conflicting")).status_code == 503
    with pytest.raises(GetError):
        route(GetError("Failed to get item", client_error("ValidationException")))


def usage_chunk_with_failures(monkeypatch, failures: list[Exception]) -> list[int]:
    """Run one chunk's commit whose transaction fails with `failures` first; returns the attempts made."""
    attempts: list[int] = []

    def transact(*_args) -> None:
        attempts.append(1)
        if failures:
            raise failures.pop(0)

    monkeypatch.setattr(usage_writer, "aggregate", lambda pending: [])
    monkeypatch.setattr(usage_writer, "stored_spans", lambda lines: {})
    monkeypatch.setattr(usage_writer, "_transact", transact)
    monkeypatch.setattr(usage_writer.time, "sleep", lambda seconds: None)
    placement = SimpleNamespace(org="acme", event_id="e1", target=SimpleNamespace(org="acme", invoice_id="2026-11"))
    outcome = usage_writer._commit_chunk([placement], datetime(2026, 11, 20, tzinfo=UTC))
    assert outcome == {("acme", "e1"): WriteOutcome.ACCEPTED}
    return attempts


def test_a_usage_transaction_that_got_no_answer_or_was_throttled_is_sent_again(monkeypatch):
    failures: list[Exception] = [NO_ANSWER, TransactWriteError("x", client_error("ThrottlingException"))]
    assert len(usage_chunk_with_failures(monkeypatch, failures)) == 3


def test_a_usage_transaction_refused_for_its_content_is_not_retried(monkeypatch):
    with pytest.raises(TransactWriteError):
        usage_chunk_with_failures(monkeypatch, [TransactWriteError("x", client_error("ValidationException"))])


def test_a_usage_transaction_that_keeps_failing_transiently_ends_busy(monkeypatch):
    with pytest.raises(Busy):
        usage_chunk_with_failures(monkeypatch, [NO_ANSWER] * (usage_writer.MAX_CONTENTION_RETRIES + 1))
