"""Stripe webhooks: verified, idempotent by event id, updating the invoice's payment status."""

from __future__ import annotations

from datetime import datetime

import stripe
from pynamodb.exceptions import PutError

from ..domain.errors import DomainError, InvalidTransition, ValidationFailed
from ..domain.invoice import InvoiceStatus, PaymentStatus
from ..observability import logger
from ..storage import keys
from ..storage.invoices import InvoiceRepository
from ..storage.models import WebhookEventItem

TOLERANCE_SECONDS = 300  # Stripe's default: older signatures are replays
HANDLED = ("invoice.paid", "invoice.payment_failed", "invoice.finalized", "invoice.voided")


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
    outcome = _apply(event, now) if event.type in HANDLED else "ignored"
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
        if event.type == "invoice.paid":
            if invoice.status is not InvoiceStatus.PAID:
                invoice = repo.transition(invoice, InvoiceStatus.PAID, now)
            repo.update_fields(invoice, payment_status=PaymentStatus.PAID.value)
        elif event.type == "invoice.payment_failed":
            # Stripe neither orders nor stops retrying deliveries: an earlier attempt's failure can arrive
            # after `invoice.paid`, and must not undo the payment.
            if invoice.status is InvoiceStatus.PAID or invoice.payment_status is PaymentStatus.PAID:
                logger.info("payment failure after the payment ignored", extra=context)
                return "ignored"
            repo.update_fields(invoice, payment_status=PaymentStatus.FAILED.value)
        elif event.type == "invoice.finalized" and not invoice.sync.stripe_invoice_number:
            repo.update_fields(invoice, stripe_invoice_number=str(data.get("number") or ""))
        elif event.type == "invoice.voided" and invoice.status is not InvoiceStatus.VOID:
            logger.warning("invoice voided in Stripe but not here", extra=context)
    except InvalidTransition:
        logger.warning("webhook does not apply to the invoice's status", extra=context)
        return "ignored"
    except DomainError:
        raise
    logger.info("webhook applied", extra=context)
    return "applied"
