"""Stripe webhooks: verified, idempotent by event id, updating the invoice's payment status."""

from __future__ import annotations

from datetime import datetime

import stripe
from pynamodb.exceptions import PutError

from ..domain.errors import DomainError, InvalidTransition, ValidationFailed
from ..observability import logger
from ..storage import keys
from ..storage.invoices import InvoiceRepository
from ..storage.models import WebhookEventItem
from .payments import HANDLED as PAYMENT_EVENTS
from .payments import apply_stripe_event

TOLERANCE_SECONDS = 300  # Stripe's default: older signatures are replays


def handle_webhook(payload: bytes, signature: str, secret: str, now: datetime) -> str:
    try:
        event = stripe.Webhook.construct_event(payload.decode(), signature, secret, tolerance=TOLERANCE_SECONDS)
    except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError) as error:
        raise ValidationFailed("webhook signature or payload is not valid") from error
    try:
        keys.safe(event.id)
    except keys.UnsafeKeyPart as error:
        raise ValidationFailed("webhook event id is not valid") from error
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


def _apply(event: stripe.Event, now: datetime) -> str:
    data = event.data.object.to_dict()  # stripe-python objects are not plain dicts
    metadata = dict(data.get("metadata") or {})
    org, invoice_id = metadata.get("org"), metadata.get("invoice_id")
    if not org or not invoice_id:
        return "not_ours"
    repo = InvoiceRepository()
    try:
        invoice = repo.get(str(org), str(invoice_id))
    except keys.UnsafeKeyPart:
        return "not_ours"
    if invoice is None:
        return "not_ours"
    context = {"org": org, "invoice_id": invoice_id, "event": event.id, "type": event.type}
    try:
        outcome = apply_stripe_event(event.type, event.id, data, invoice, repo, now)
    except InvalidTransition:
        logger.warning("webhook does not apply to the invoice's status", extra=context)
        return "ignored"
    except DomainError:
        raise
    logger.info("webhook handled", extra={**context, "outcome": outcome})
    return outcome
