"""Stripe webhooks: verified, idempotent by event id, updating the invoice's payment status.

A refusal is a 400 (Stripe retries a 5xx for days, and a malformed event never becomes valid): a
signature that does not verify, or is dated more than the tolerance before or after our clock; a body
that is not one plain JSON document (see safejson); an event without a string id and type and an object
in `data.object`; for the invoice events we act on, metadata that is not strings, or an odd number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from pynamodb.exceptions import PutError

from ..domain.errors import DomainError, InvalidTransition
from ..domain.identifiers import SAFE_PART, UnsafeKeyPart
from ..observability import logger
from ..safejson import UnreadableJson, loads
from ..storage import keys
from ..storage.invoice_headers import InvoiceHeaders
from ..storage.models import WebhookEventItem
from .payments import HANDLED as PAYMENT_EVENTS
from .payments import apply_stripe_event

TOLERANCE = timedelta(seconds=300)  # Stripe's default, both ways: older is a replay, newer is not Stripe's clock
_SIGNED_AT = re.compile(r"[0-9]{1,10}")  # unix seconds in ASCII digits (int() would read "١٧٦٣...")
_EVENT_TYPE = re.compile(r"[A-Za-z0-9_.]{1,100}")
_INVOICE_NUMBER = re.compile(r"[A-Za-z0-9_.:/-]{1,100}")


class WebhookRefused(DomainError, code="invalid_webhook"):
    """A webhook delivery we cannot accept: a bad signature, or a payload that is not Stripe's."""


@dataclass(frozen=True)
class StripeEvent:
    id: str
    type: str
    object: dict[str, Any]  # data.object


def _refused(reason: str) -> WebhookRefused:
    logger.warning("webhook refused", extra={"reason": reason})
    return WebhookRefused(f"webhook refused: {reason}")


def handle_webhook(payload: bytes, signature: str, secret: str, now: datetime) -> str:
    event = _verified(payload, signature, secret, now)
    try:
        WebhookEventItem.get(keys.webhook_pk(event.id), keys.WEBHOOK_SK)
        return "duplicate"
    except WebhookEventItem.DoesNotExist:
        pass
    outcome = _apply(event, now) if event.type in PAYMENT_EVENTS else "ignored"
    # Recorded after applying: a crash in between means Stripe's retry applies it again, which is harmless.
    try:
        WebhookEventItem(keys.webhook_pk(event.id), keys.WEBHOOK_SK, event_type=event.type, received_at=now,
                         expires_at=int(now.timestamp()) + 30 * 86400).save(
            condition=WebhookEventItem.pk.does_not_exist())
    except PutError:
        return "duplicate"
    return outcome


def _verified(payload: bytes, signature: str, secret: str, now: datetime) -> StripeEvent:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _refused("the body is not UTF-8") from error
    stamps = [part[2:] for part in signature.split(",") if part.startswith("t=")]
    if len(stamps) != 1 or not _SIGNED_AT.fullmatch(stamps[0]):
        raise _refused("the Stripe-Signature header has no timestamp we can read")
    try:
        stripe.WebhookSignature.verify_header(text, signature, secret, tolerance=None)  # the time: below, our clock
    except stripe.SignatureVerificationError as error:
        raise _refused("the signature does not verify") from error
    if abs(datetime.fromtimestamp(int(stamps[0]), UTC) - now) > TOLERANCE:
        raise _refused("the signature is not dated within 5 minutes of now")
    try:
        document = loads(text)
    except UnreadableJson as error:
        raise _refused(str(error)) from error
    return _event(document)


def _event(document: Any) -> StripeEvent:
    if not isinstance(document, dict):
        raise _refused("the event is not a JSON object")
    event_id, event_type, data = document.get("id"), document.get("type"), document.get("data")
    if not isinstance(event_id, str) or not SAFE_PART.fullmatch(event_id):
        raise _refused("the event id is missing or malformed")
    if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
        raise _refused("the event type is missing or malformed")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise _refused("data.object is not an object")
    return StripeEvent(event_id, event_type, obj)


def _invoice_fields(event: StripeEvent) -> tuple[dict[str, str], str | None]:
    """The metadata and number of the Stripe invoice an invoice.* event carries."""
    metadata = event.object.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
        raise _refused("data.object.metadata is not an object of strings")
    number = event.object.get("number")
    if number is not None and not (isinstance(number, str) and _INVOICE_NUMBER.fullmatch(number)):
        raise _refused("data.object.number is malformed")
    return metadata, number


def _apply(event: StripeEvent, now: datetime) -> str:
    metadata, _number = _invoice_fields(event)  # checked here; payments reads the number
    org, invoice_id = metadata.get("org"), metadata.get("invoice_id")
    if not org or not invoice_id:
        return "not_ours"
    repo = InvoiceHeaders()
    try:
        invoice = repo.get(org, invoice_id)
    except UnsafeKeyPart:
        return "not_ours"
    if invoice is None:
        return "not_ours"
    context = {"org": org, "invoice_id": invoice_id, "event": event.id, "type": event.type}
    try:
        outcome = apply_stripe_event(event.type, event.id, event.object, invoice, repo, now)
    except InvalidTransition:
        logger.warning("webhook does not apply to the invoice's status", extra=context)
        return "ignored"
    except DomainError:
        raise
    logger.info("webhook handled", extra={**context, "outcome": outcome})
    return outcome
