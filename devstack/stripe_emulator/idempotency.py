"""Idempotency keys, as Stripe's API honours the ``Idempotency-Key`` header.

* The first request with a key runs; its result is saved once the endpoint
  started executing (requests refused by validation, rate limiting or an
  injected pre-execution failure are not saved and may be retried).
* Later requests with the same key and the same endpoint and parameters get
  the saved status and body back, marked ``Idempotent-Replayed: true``.
* The same key with another endpoint or other parameters is refused with a
  400 ``idempotency_error``.
* While the first request is still running, the same key gets a 409
  ``idempotency_key_in_use``; other keys are not held up.
* Keys are forgotten after a retention period (24 hours on Stripe) or when
  told to.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .errors import StripeError

DEFAULT_TTL_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255
# stripe-python sends a generated key with every POST, so a long benchmark
# saves one response per POST; beyond this many the oldest are dropped early
# (a retry comes within seconds, far inside the window kept).
DEFAULT_MAX_KEYS = 100_000


@dataclass
class SavedResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    request_id: str = ""


@dataclass
class _Entry:
    endpoint: str
    params_digest: str
    first_seen: float
    response: SavedResponse | None = None  # None while in flight


def fingerprint(pairs: Iterable[tuple[str, str]]) -> str:
    """A digest of the request parameters that ignores their order."""
    digest = hashlib.sha256()
    for key, value in sorted(pairs):
        digest.update(key.encode() + b"\0" + value.encode() + b"\0")
    return digest.hexdigest()


class IdempotencyStore:
    def __init__(self, ttl_seconds: float = DEFAULT_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self._lock = threading.Lock()  # held only for dict updates
        # Insertion order is first-seen order, so expiry scans from the front.
        self._entries: dict[str, _Entry] = {}
        self.ttl_seconds = ttl_seconds
        self.max_keys = max_keys
        self._clock = clock

    def begin(self, key: str, endpoint: str, params_digest: str) -> SavedResponse | None:
        """Claim ``key`` for a new request, or return the response to replay."""
        if len(key) > MAX_KEY_LENGTH:
            raise StripeError(
                400, f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters.",
                type="invalid_request_error", stored=False)
        with self._lock:
            self._purge_locked()
            entry = self._entries.get(key)
            if entry is None:
                self._entries[key] = _Entry(endpoint, params_digest, self._clock())
                return None
            if entry.endpoint != endpoint:
                raise StripeError(
                    400,
                    "Keys for idempotent requests can only be used for the same "
                    f"endpoint they were first used for ('{entry.endpoint}' vs "
                    f"'{endpoint}'). Try using a key other than '{key}' if you "
                    "meant to execute a different request.",
                    type="idempotency_error", stored=False)
            if entry.params_digest != params_digest:
                raise StripeError(
                    400,
                    "Keys for idempotent requests can only be used with the same "
                    "parameters they were first used with. Try using a key other "
                    f"than '{key}' if you meant to execute a different request.",
                    type="idempotency_error", stored=False)
            if entry.response is None:
                raise StripeError(
                    409,
                    "There is currently another in-progress request using this "
                    "Idempotent Key (that probably means you submitted twice, and "
                    "the other request is still going through): "
                    f"{key}. Please try again later.",
                    type="idempotency_error", code="idempotency_key_in_use",
                    stored=False)
            return entry.response

    def complete(self, key: str, response: SavedResponse) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.response = response

    def abandon(self, key: str) -> None:
        """Release a key whose request never started executing."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.response is None:
                del self._entries[key]

    def forget_all(self) -> int:
        """Drop every saved key (in-flight requests keep theirs)."""
        with self._lock:
            saved = [k for k, e in self._entries.items() if e.response is not None]
            for key in saved:
                del self._entries[key]
            return len(saved)

    def count(self) -> int:
        with self._lock:
            self._purge_locked()
            return len(self._entries)

    def in_flight(self) -> list[str]:
        with self._lock:
            return [k for k, e in self._entries.items() if e.response is None]

    def _purge_locked(self) -> None:
        cutoff = self._clock() - self.ttl_seconds
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            expired = entry.first_seen <= cutoff or len(self._entries) > self.max_keys
            if not expired or entry.response is None:
                break  # the oldest is fresh (or still running): so are the rest
            del self._entries[key]
