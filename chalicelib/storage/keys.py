"""Every key shape of the single table, and the access pattern each one serves.

Nothing else in the code builds a key. Parts that come from users are checked against a
safe alphabet without the '#' delimiter, so a user value can never forge another key.

  pk                         sk                 item                     access pattern
  ORG#{org}                  PROFILE            billing profile          get org
  ORG#{org}                  INV#{invoice}      invoice header           get / list an org's invoices (newest first)
  ORG#{org}#INV#{invoice}    LINE#{line}        line item                read an invoice's lines: O(lines)
  EVT#{org}#{event}          EVT                dedup record (TTL)       exactly-once usage
  TOKEN#{hmac}               TOKEN              API token (HMAC only)    authenticate
  ROLLUP#{shard}             MONTH#{YYYY-MM}    month totals (sharded)   finance totals: O(months)
  ORG#{org}                  ROLLUP#{YYYY-MM}   month totals of one org  totals for one org
  WEBHOOK#{event}            WEBHOOK            processed Stripe event   webhook idempotency
  SYNCLEASE#{org}#{invoice}  LEASE              sync worker lease        one worker per invoice
  ORG#{org}                  SUBS               plan change timeline     an org's subscriptions
  ORG#{org}#CREDITS          BALANCE            credit running totals    balance in one read
  ORG#{org}#CREDITS          GRANT#{grant}      one credit grant         grants to apply at finalize
  ORG#{org}#CREDITS          ENTRY#{entry}      ledger movement          the ledger, one id per cause
  USAGE#{org}#{YYYY-MM}      DAY#{YYYY-MM-DD}#{invoice}#{line}
                                                a line's usage on one    usage over time: one Query per month
                                                day, and per hour        reads every line's buckets of that month
  ORG#{org}                  BUDGET             monthly budget           get / put an org's budget
  ORG#{org}                  ALERT#{period}#{kind}#{threshold}
                                                alert, once per cause    exactly-once alerts; history newest first
  ORG#{org}                  NOTICE#{event}     customer event (TTL)     exactly-once events; the stream fans out
  ORG#{org}                  WHEP#{endpoint}    webhook endpoint         list an org's endpoints
  WHEP#{org}#{endpoint}      DLV#{created}#{event}
                                                delivery log (TTL)       an endpoint's deliveries, oldest first

GSI gsi1 indexes invoice headers by state: gsi1pk STATE#{state}, gsi1sk {period}#{org}.
It serves the month-end finalizer (drafts of past periods) and the reconciler (unsynced).
It also holds SUBSCRIBED / {org} (the month-end job opens subscribers' drafts) and, while a
grant with an expiry has something left, CREDIT_EXPIRY / {expires_at}#{org}#{grant}.
Token items sit in gsi1 too (gsi1pk TOKENS, gsi1sk their public id): listing and revoking
tokens reads one small partition instead of scanning the table.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable

from ..domain.identifiers import SAFE_PART, UnsafeKeyPart

ROLLUP_SHARDS = 8  # spreads month-end finalize writes over partitions; reads cost months × shards


def safe(part: str) -> str:
    if not SAFE_PART.fullmatch(part):
        raise UnsafeKeyPart(f"unsafe key part {part!r}")
    return part


def _prefixed(prefix: str) -> Callable[[str], str]:
    """The builder of the keys that are `prefix` and one part from a user, checked."""
    def key(part: str) -> str:
        return prefix + safe(part)
    return key


org_pk = _prefixed("ORG#")


PROFILE_SK = "PROFILE"


INVOICE_SK_PREFIX = "INV#"
invoice_sk = _prefixed(INVOICE_SK_PREFIX)


def lines_pk(org: str, invoice_id: str) -> str:
    return f"ORG#{safe(org)}#INV#{safe(invoice_id)}"


LINE_SK_PREFIX = "LINE#"
line_sk = _prefixed(LINE_SK_PREFIX)


def event_pk(org: str, event_id: str) -> str:
    return f"EVT#{safe(org)}#{safe(event_id)}"


EVENT_SK = "EVT"


def token_digest(token: str, pepper: str) -> str:
    """HMAC-SHA256 keyed by the pepper: the table alone (a backup, a leaked read) cannot test guesses."""
    return hmac.new(pepper.encode(), token.encode(), hashlib.sha256).hexdigest()


def token_pk(digest: str) -> str:
    return f"TOKEN#{digest}"


TOKEN_SK = "TOKEN"
TOKENS_GSI_PK = "TOKENS"
TOKEN_ID_LENGTH = 16  # a public id: the digest's first hex digits, which reveal nothing of the token


def token_id(digest: str) -> str:
    return digest[:TOKEN_ID_LENGTH]


def rollup_shard_pk(shard: int) -> str:
    return f"ROLLUP#{shard}"


def rollup_shard_for(org: str) -> int:
    return int(hashlib.sha256(org.encode()).hexdigest(), 16) % ROLLUP_SHARDS


def month_sk(period: str) -> str:
    return f"MONTH#{period}"


def org_rollup_sk(period: str) -> str:
    return f"ROLLUP#{period}"


webhook_pk = _prefixed("WEBHOOK#")
WEBHOOK_SK = "WEBHOOK"


def lease_pk(org: str, invoice_id: str) -> str:
    return f"SYNCLEASE#{safe(org)}#{safe(invoice_id)}"


LEASE_SK = "LEASE"


def state_gsi_pk(state: str) -> str:
    return f"STATE#{state}"


def state_gsi_sk(period: str, org: str) -> str:
    return f"{period}#{safe(org)}"


SUBS_SK = "SUBS"
SUBSCRIBED_GSI_PK = "SUBSCRIBED"


def credits_pk(org: str) -> str:
    return f"ORG#{safe(org)}#CREDITS"


CREDIT_BALANCE_SK = "BALANCE"
GRANT_SK_PREFIX = "GRANT#"
ENTRY_SK_PREFIX = "ENTRY#"
CREDIT_EXPIRY_GSI_PK = "CREDIT_EXPIRY"


grant_sk = _prefixed(GRANT_SK_PREFIX)
entry_sk = _prefixed(ENTRY_SK_PREFIX)


def credit_expiry_gsi_sk(expires_at: str, org: str, grant_id: str) -> str:
    return f"{expires_at}#{safe(org)}#{safe(grant_id)}"


_PERIOD = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_DAY = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")


def usage_pk(org: str, period: str) -> str:
    """The month the usage happened in (a late line's buckets sit in their own period, like its usage)."""
    if not _PERIOD.fullmatch(period):
        raise UnsafeKeyPart(f"not a period {period!r}")
    return f"USAGE#{safe(org)}#{period}"


USAGE_DAY_SK_PREFIX = "DAY#"


def usage_day_sk(day: str, invoice_id: str, line_id: str) -> str:
    if not _DAY.fullmatch(day):
        raise UnsafeKeyPart(f"not a day {day!r}")
    return f"{USAGE_DAY_SK_PREFIX}{day}#{safe(invoice_id)}#{safe(line_id)}"


BUDGET_SK = "BUDGET"
ALERT_SK_PREFIX = "ALERT#"
NOTICE_SK_PREFIX = "NOTICE#"
ENDPOINT_SK_PREFIX = "WHEP#"
DELIVERY_SK_PREFIX = "DLV#"


def alert_sk(period: str, kind: str, threshold: str) -> str:
    return f"{ALERT_SK_PREFIX}{period}#{safe(kind)}#{safe(threshold)}"


def alert_period_prefix(period: str) -> str:
    return f"{ALERT_SK_PREFIX}{period}#"


notice_sk = _prefixed(NOTICE_SK_PREFIX)
endpoint_sk = _prefixed(ENDPOINT_SK_PREFIX)


def deliveries_pk(org: str, endpoint_id: str) -> str:
    return f"WHEP#{safe(org)}#{safe(endpoint_id)}"


def delivery_sk(event_created: str, event_id: str) -> str:
    """`event_created` is the event's compact UTC time (YYYYmmddTHHMMSS), so the log reads in time order."""
    return f"{DELIVERY_SK_PREFIX}{safe(event_created)}#{safe(event_id)}"
