"""`invoicing-admin tokens create|list|revoke`: issue API tokens on any deployment, see and revoke them.
(`subscriptions` and `credits` live in billing.py.)

A token is printed once, when it is created; the table keeps only its HMAC (keyed by the
pepper), its label, scopes, optional expiry and when it was last used.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..api.auth import SCOPE, invalid_scopes
from ..config import Settings, require_pepper
from ..domain.errors import NotFound, ValidationFailed
from ..domain.tokens import TokenInfo
from ..oncall import render
from ..oncall.runner import EXIT_OK, Answer, command_parser, run
from ..storage.tokens import TokenRepository
from .billing import add_commands

DESCRIPTION = f"""Administration of the invoicing service: API tokens, subscriptions, prepaid credits.

scopes: {SCOPE.pattern.strip("^$")}
  admin              everything
  usage:write        usage for every org (the platform's own collectors only)
  usage:write:ORG    usage for one org (repeat --scope for each org a producer may write)
  org:ORG:read       read one org's profile, invoices and totals

exit codes: 0 done; 1 failed (not found, refused, AWS error, missing setting); 2 bad arguments."""
DURATION = re.compile(r"^(\d{1,5})([dhm])$")
UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def _duration(text: str) -> timedelta:
    match = DURATION.match(text)
    if not match or int(match.group(1)) < 1:
        raise argparse.ArgumentTypeError("a whole number of days, hours or minutes, e.g. 90d, 12h, 30m")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


def token_json(info: TokenInfo, now: datetime) -> dict[str, object]:
    return {**render.jsonable(info), "scopes": sorted(info.scopes), "expired": info.expired(now)}


def tokens_table(tokens: list[TokenInfo], now: datetime, title: str) -> Table:
    table = Table(title=title)
    table.add_column("id", no_wrap=True, min_width=16)  # pasted into `revoke`: never cut
    for name in ("label", "scopes", "created", "expires", "last used"):
        table.add_column(name, overflow="fold")
    for info in tokens:
        expires = render.when(info.valid_until) if info.valid_until else "never"
        table.add_row(info.token_id, info.label, "\n".join(sorted(info.scopes)), render.when(info.created_at),
                      expires + (" (expired)" if info.expired(now) else ""),
                      render.when(info.last_used_at) if info.last_used_at else "never",
                      style="dim" if info.expired(now) else None)
    return table


def cmd_create(args: argparse.Namespace, current: Settings, now: datetime) -> Answer:
    scopes = set(args.scope)
    bad = invalid_scopes(scopes)
    if bad:
        raise ValidationFailed(f"not a scope: {', '.join(bad)} (see `invoicing-admin tokens create --help`)")
    valid_until = now + args.expires_in if args.expires_in else None
    token, info = TokenRepository(require_pepper(current)).issue(args.label, scopes, now, valid_until)
    view = Group(tokens_table([info], now, "Token created"),
                 Text(f"Token (shown once, store it now): {token}", style="bold"))
    return EXIT_OK, {"token": token, **token_json(info, now)}, view


def cmd_list(args: argparse.Namespace, current: Settings, now: datetime) -> Answer:
    tokens = sorted(TokenRepository(require_pepper(current)).all(), key=lambda info: info.created_at)
    if not tokens:
        return EXIT_OK, {"tokens": []}, Text("No tokens. `invoicing-admin tokens create` issues one.")
    return EXIT_OK, {"tokens": [token_json(info, now) for info in tokens]}, tokens_table(tokens, now, "API tokens")


def cmd_revoke(args: argparse.Namespace, current: Settings, now: datetime) -> Answer:
    repo = TokenRepository(require_pepper(current))
    found = repo.matching(args.token_id)
    if not found:
        raise NotFound(f"no token with id {args.token_id!r} (`invoicing-admin tokens list` shows them)")
    if len(found) > 1:
        ids = ", ".join(info.token_id for info in found)
        raise ValidationFailed(f"{args.token_id!r} starts {len(found)} token ids ({ids}); give more of it")
    (info,) = found
    if not repo.revoke(info.token_id):
        raise NotFound(f"token {info.token_id} was revoked meanwhile")
    return EXIT_OK, {"revoked": token_json(info, now)}, tokens_table([info], now, "Token revoked")


def build_parser() -> argparse.ArgumentParser:
    parser, commands, common = command_parser("invoicing-admin", DESCRIPTION)
    tokens = commands.add_parser("tokens", parents=[common], help="issue, list and revoke API tokens")
    actions = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")

    cmd = actions.add_parser("create", parents=[common], help="issue a token (printed once)",
                             description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmd.add_argument("--label", required=True, help="who or what holds it, e.g. 'fleet collector eu'")
    cmd.add_argument("--scope", required=True, action="append", help="a scope; repeat for several")
    cmd.add_argument("--expires-in", type=_duration, metavar="DURATION", help="e.g. 90d, 12h (default: never)")
    cmd.set_defaults(handler=cmd_create)
    cmd = actions.add_parser("list", parents=[common], help="labels, scopes, expiry and last use (never secrets)")
    cmd.set_defaults(handler=cmd_list)
    cmd = actions.add_parser("revoke", parents=[common], help="revoke a token by its id (or a unique prefix)")
    cmd.add_argument("token_id")
    cmd.set_defaults(handler=cmd_revoke)
    add_commands(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args.handler, args)
