"""Which table changes become sync messages: an invoice entering `pending`, or a new sync request.
Everything else on the stream (other items, drafts, bookkeeping while pending) is ignored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sync_support import create_org, finalize, record_lines, stored

T0 = "2026-11-30T10:00:00.000000+0000"  # as the table stores a time
T1 = "2026-11-30T11:00:00.000000+0000"


def header(state: str, requested_at: str | None = None, status: str = "finalized", **extra: Any) -> dict[str, Any]:
    """A whole invoice header image, as the stream carries it."""
    image = {
        "pk": {"S": "ORG#acme"}, "sk": {"S": "INV#inv_202611"}, "org": {"S": "acme"},
        "invoice_id": {"S": "inv_202611"}, "number": {"S": "ACME-0001"}, "period": {"S": "2026-11"},
        "currency": {"S": "usd"}, "created_at": {"S": T0}, "updated_at": {"S": T0},
        "gsi1pk": {"S": "STATE#x"}, "gsi1sk": {"S": "x"}, "status": {"S": status}, "sync_state": {"S": state},
    }
    if requested_at:
        image["sync_requested_at"] = {"S": requested_at}
    image.update(extra)
    return image


def bodies(messages: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(message.body()) for message in messages]


def test_only_invoice_headers_that_need_stripe_become_messages():
    from chalicelib.services.sync_worker import changes_needing_sync

    line = {"pk": {"S": "ORG#acme#INV#inv_202611"}, "sk": {"S": "LINE#li_1"}, "org": {"S": "acme"},
            "invoice_id": {"S": "inv_202611"}, "sync_state": {"S": "pending"}}
    org_profile = {"pk": {"S": "ORG#acme"}, "sk": {"S": "PROFILE"}, "org": {"S": "acme"}}
    lease = {"pk": {"S": "SYNCLEASE#acme#inv_202611"}, "sk": {"S": "LEASE"}}
    records = [
        ("INSERT", None, org_profile),
        ("INSERT", None, line),  # not a header, whatever its attributes say
        ("INSERT", None, lease),
        ("REMOVE", lease, None),
        ("INSERT", None, header("not_required", status="draft")),
        ("MODIFY", header("not_required", status="draft"), header("not_required", status="finalizing")),
        ("MODIFY", header("pending", T0), header("pending", T0, sync_attempts={"N": "1"})),
        ("MODIFY", header("pending", T0), header("synced", T0)),
        ("MODIFY", header("pending", T0), header("failed", T0)),
        ("REMOVE", header("pending", T0), None),
    ]
    assert changes_needing_sync(records) == []


def test_finalize_void_after_sync_and_a_new_request_each_become_one_message():
    from chalicelib.services.sync_worker import changes_needing_sync

    finalized = ("MODIFY", header("not_required", status="finalizing"), header("pending", T0))
    voided = ("MODIFY", header("synced", T0), header("pending", T1, status="void"))
    requested_again = ("MODIFY", header("failed", T0), header("pending", T1))
    re_requested_while_pending = ("MODIFY", header("pending", T0), header("pending", T1))
    for record, requested in ((finalized, T0), (voided, T1), (requested_again, T1), (re_requested_while_pending, T1)):
        assert bodies(changes_needing_sync([record])) == [
            {"org": "acme", "invoice_id": "inv_202611", "requested_at": requested.replace("+0000", "Z")}], record


@pytest.fixture
def stream(sync_env) -> Any:
    """The table's stream from now on, as Lambda would deliver it, kept for the test to inspect."""
    from devstack.event_runner import EventRunner

    class Recorded:
        def __init__(self) -> None:
            self.records: list[dict[str, Any]] = []
            self.runner = EventRunner(lambda event, context: self.records.extend(event["Records"]), None,
                                      stream_arn=sync_env.stream_arn, starting_position="LATEST")
            self.runner.poll_once()

        def changes(self, org: str) -> list[tuple[str, Any, Any]]:
            """The records since the last call that concern `org`, as handle_table_changes passes them on."""
            self.runner.run_until_idle(30)
            taken, self.records = self.records, []
            mine = []
            for record in taken:
                body = record["dynamodb"]
                image = body.get("NewImage") or body.get("OldImage") or {}
                if org in json.dumps(body.get("Keys", {})) or image.get("org", {}).get("S") == org:
                    mine.append((record["eventName"], body.get("OldImage"), body.get("NewImage")))
            return mine

    return Recorded()


def test_the_real_stream_of_an_invoice_life_yields_exactly_the_needed_messages(stream, gateway):
    from chalicelib.services.invoices import InvoiceService
    from chalicelib.services.sync import InvoiceSync
    from chalicelib.services.sync_worker import changes_needing_sync
    from chalicelib.storage.invoices import InvoiceRepository
    from chalicelib.stripe.errors import RetryableSyncError

    def messages() -> list[dict[str, Any]]:
        return bodies(changes_needing_sync(stream.changes(org)))

    now = datetime.now(UTC)
    org = create_org("stream")
    record_lines([(org, 3)], now)
    assert messages() == []  # profile, draft header, lines, dedup records

    invoice = finalize(org, now)
    expected = {"org": org, "invoice_id": invoice.id}
    (sent,) = messages()
    assert sent == {**expected, "requested_at": sent["requested_at"]}
    assert sent["requested_at"] is not None

    # While pending: a retryable failure recorded, the Stripe id stored, the lease taken and let go.
    syncer = InvoiceSync(gateway)
    syncer.record_failure(org, invoice.id, RetryableSyncError("stripe 503"), now, permanent=False)
    assert stored(org, invoice.id).sync.attempts == 1
    assert messages() == []
    syncer.sync(org, invoice.id, now)
    assert stored(org, invoice.id).sync.state.value == "synced"
    assert messages() == []

    InvoiceService().void(org, invoice.id, now + timedelta(minutes=1))
    (void_message,) = messages()
    assert void_message["org"] == org and void_message["invoice_id"] == invoice.id
    assert void_message["requested_at"] != sent["requested_at"]
    syncer.sync(org, invoice.id, now + timedelta(minutes=1))
    assert messages() == []

    repository = InvoiceRepository()
    repository.request_sync(stored(org, invoice.id), now + timedelta(minutes=2))
    (again,) = messages()
    assert again["requested_at"] not in (sent["requested_at"], void_message["requested_at"])
    # Asked again before the worker ran: a new request, so a new message.
    repository.request_sync(stored(org, invoice.id), now + timedelta(minutes=3))
    (once_more,) = messages()
    assert once_more["requested_at"] != again["requested_at"]
