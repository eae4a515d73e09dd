"""The content fingerprint of a usage event, kept in its dedup record.

An event id names one event: a resend must carry the same content. The fingerprint is a short
digest per field (not one digest of everything), so a resend that differs can be told which
fields differ, as Stripe tells a client that reused an idempotency key with other parameters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

FIELDS = ("org", "app", "meter", "quantity", "region", "attributes", "timestamp")
_VERSION = "v1"
_DIGEST_CHARS = 16  # 64 bits per field: a changed field goes unnoticed with odds of 1 in 2**64


def fingerprint(content: Mapping[str, str]) -> str:
    """`content` holds each of FIELDS in one canonical text form (the caller normalises)."""
    parts = [hashlib.sha256(f"{name}\x1f{content[name]}".encode()).hexdigest()[:_DIGEST_CHARS] for name in FIELDS]
    return f"{_VERSION}:{'.'.join(parts)}"


def differing(stored: str | None, asked: str) -> list[str]:
    """The fields whose content differs; none when the stored record predates fingerprints."""
    if stored is None or stored == asked:
        return []
    stored_version, _, stored_parts = stored.partition(":")
    asked_version, _, asked_parts = asked.partition(":")
    if stored_version != asked_version:
        return []  # written under another scheme: nothing to compare field by field
    pairs = zip(FIELDS, stored_parts.split("."), asked_parts.split("."), strict=True)
    return [name for name, old, new in pairs if old != new]
