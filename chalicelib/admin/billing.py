"""`invoicing-admin subscriptions …` and `invoicing-admin credits …`: plans and prepaid credit from the shell.

The same services as the API, so the same rules: a change or grant is idempotent by its id (give
the same `--change-id` / `--client-id` to retry safely), changes may be backdated up to the
late-usage window, and the open invoices carry the recurring lines as soon as the command returns.
"""

from __future__ import annotations

import argparse
import uuid
from datetime import datetime
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..api.credits import grant_json, statement_json
from ..api.subscriptions import subscriptions_json
from ..config import Settings
from ..domain.credits import CreditReason
from ..domain.errors import NotFound, ValidationFailed
from ..domain.money import Money
from ..domain.periods import parse_utc
from ..oncall.runner import EXIT_OK, Answer
from ..services.credits import CreditService
from ..services.subscriptions import SubscriptionService
from ..storage.orgs import OrgRepository

GRANTABLE = [r.value for r in CreditReason if r is not CreditReason.CARRYOVER]  # carry-over is finalize's own


def _moment(text: str) -> datetime:
    try:
        return parse_utc(text)
    except ValueError:
        raise argparse.ArgumentTypeError("an RFC 3339 time with its offset, e.g. 2026-11-20T14:00:00Z") from None


def _currency(org: str) -> str:
    profile = OrgRepository().get(org)
    if profile is None:
        raise NotFound(f"organisation {org!r} has no billing profile")
    return profile.currency


def _plans_view(body: dict[str, Any], title: str) -> Group:
    held = Table("family", "plan", "monthly fee", "since", title=title)
    for s in body["subscriptions"]:
        held.add_row(s["family"], s["name"], s["monthly_fee"]["display"], s["since"])
    changes = Table("change id", "family", "plan", "effective", "recorded", title="Changes, in effect order")
    for c in body["changes"]:
        changes.add_row(c["change_id"], c["family"], c["plan"] or "(cancelled)", c["effective_at"], c["recorded_at"])
    return Group(held, changes)


def cmd_subscriptions_show(args: argparse.Namespace, current: Settings, now: datetime) -> Answer:
    body = subscriptions_json(args.org, SubscriptionService(current).timeline(args.org), _currency(args.org), now)
    return EXIT_OK, body, _plans_view(body, f"{args.org}: plans held now")


def _change(args: argparse.Namespace, current: Settings, now: datetime, family: str | None,
            plan: str | None) -> Answer:
    currency = _currency(args.org)
    change_id = args.change_id or f"cli-{uuid.uuid4().hex[:12]}"
    timeline, created = SubscriptionService(current).change(args.org, change_id, family, plan, args.at or now, now)
    body = {**subscriptions_json(args.org, timeline, currency, now), "change_id": change_id, "created": created}
    note = "recorded" if created else "already recorded (nothing changed)"
    return EXIT_OK, body, Group(Text(f"Change {change_id} {note}."), _plans_view(body, f"{args.org}: plans held now"))


def cmd_subscriptions_change(args: argparse.Namespace, current: Settings, now: datetime) -> Answer:
    return _change(args, current, now, None, args.plan)


def cmd_subscriptions_cancel(args: argparse.Namespace, current: Settings, now: datetime) -> Answer:
    return _change(args, current, now, args.family, None)


def _credits_view(body: dict[str, Any]) -> Group:
    summary = Text(f"balance {body['balance']['display']} = granted {body['granted']['display']} - applied "
                   f"{body['applied']['display']} - expired {body['expired']['display']} + restored "
                   f"{body['restored']['display']}")
    grants = Table("grant", "reason", "description", "amount", "left", "expires", title="Grants, in the order used")
    for g in body["grants"]:
        grants.add_row(g["id"], g["reason"], g["description"], g["amount"]["display"], g["remaining"]["display"],
                       g["expires_at"] or "never")
    ledger = Table("at", "movement", "grant", "amount", "invoice", title="Ledger")
    for e in body["ledger"]:
        ledger.add_row(e["at"], e["movement"], e["grant_id"], e["amount"]["display"], e["invoice_id"] or "")
    return Group(summary, grants, ledger)


def cmd_credits_show(args: argparse.Namespace, current: Settings, now: datetime) -> Answer:
    body = statement_json(args.org, CreditService().statement(args.org), _currency(args.org))
    return EXIT_OK, body, _credits_view(body)


def cmd_credits_grant(args: argparse.Namespace, current: Settings, now: datetime) -> Answer:
    currency = _currency(args.org)
    if args.amount_cents <= 0:
        raise ValidationFailed("the amount is a positive number of cents")
    if args.expires_at is not None and args.expires_at <= now:
        raise ValidationFailed("--expires-at is in the past")
    client_id = args.client_id or f"cli-{uuid.uuid4().hex[:12]}"
    grant, created = CreditService().grant(args.org, client_id, args.amount_cents, CreditReason(args.reason),
                                           args.description, args.expires_at, now)
    body = {**grant_json(grant, currency), "created": created}
    note = "granted" if created else "already granted (nothing changed)"
    return EXIT_OK, body, Text(f"{Money(grant.amount_cents, currency).display()} {note} to {args.org} as {grant.id} "
                               f"(client id {client_id}).")


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """The `subscriptions` and `credits` commands, under the admin tool's COMMAND."""
    subscriptions = commands.add_parser("subscriptions", parents=[common], help="an org's plans: show, change, cancel")
    actions = subscriptions.add_subparsers(dest="subscriptions_command", required=True, metavar="ACTION")
    cmd = actions.add_parser("show", parents=[common], help="plans held now and every recorded change")
    cmd.add_argument("org")
    cmd.set_defaults(handler=cmd_subscriptions_show)
    for name, handler, what, example in (
            ("change", cmd_subscriptions_change, "plan", "support-premium"),
            ("cancel", cmd_subscriptions_cancel, "family", "support")):
        verb = "subscribe or change to a plan" if what == "plan" else "cancel a plan family"
        cmd = actions.add_parser(name, parents=[common], help=f"{verb} from a moment (default now), prorated to "
                                                              "the second")
        cmd.add_argument("org")
        cmd.add_argument(what, help=f"e.g. {example}")
        cmd.add_argument("--at", type=_moment, help="when it takes effect (up to 35 days back; default now)")
        cmd.add_argument("--change-id", help="repeat it to retry safely (default: a new id)")
        cmd.set_defaults(handler=handler)

    credits = commands.add_parser("credits", parents=[common], help="an org's prepaid credit: show, grant")
    actions = credits.add_subparsers(dest="credits_command", required=True, metavar="ACTION")
    cmd = actions.add_parser("show", parents=[common], help="balance, grants and the ledger")
    cmd.add_argument("org")
    cmd.set_defaults(handler=cmd_credits_show)
    cmd = actions.add_parser("grant", parents=[common], help="grant credit, applied at finalize soonest expiry first")
    cmd.add_argument("org")
    cmd.add_argument("amount_cents", type=int)
    cmd.add_argument("--reason", required=True, choices=GRANTABLE)
    cmd.add_argument("--description", required=True)
    cmd.add_argument("--expires-at", type=_moment, help="usable by invoices of periods ending by then")
    cmd.add_argument("--client-id", help="repeat it to retry safely (default: a new id)")
    cmd.set_defaults(handler=cmd_credits_grant)
