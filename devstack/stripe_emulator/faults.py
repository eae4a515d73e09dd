"""Fault injection by endpoint, to rehearse what production Stripe does.

A rule matches requests by ``"METHOD /path"`` pattern, where ``*`` stands for
one path segment (``"POST /v1/invoices/*/add_lines"``), the method may be
left out or be ``*``, and a bare ``"*"`` matches every request. A matching
rule can:

* answer 5xx ``api_error`` (``error_rate``),
* answer 429 ``rate_limit`` (``rate_limit_rate``) or 429 ``lock_timeout``
  (``lock_timeout_rate``, sent with ``Stripe-Should-Retry: true``),
* apply the request and then drop the connection without a response
  (``lost_response_rate``), so the client sees a network error although the
  change was made and its idempotency key saved,
* add ``latency_ms`` of processing time.

``fail_next`` queues deterministic failures for the next N matching
requests. Random choices come from one seedable RNG.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from . import errors
from .errors import StripeError

FAULT_KINDS = ("error", "rate_limit", "lock_timeout", "lost_response")
_ids = itertools.count(1)


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    pattern = pattern.strip()
    if pattern in ("*", ""):
        return re.compile(r".*")
    method, _, path = pattern.partition(" ")
    if not path:  # only a path was given
        method, path = "*", method
    method_re = r"[A-Z]+" if method == "*" else re.escape(method.upper())
    path_re = re.escape(path).replace(r"\*", r"[^/]*")
    return re.compile(f"{method_re} {path_re}")


@dataclass
class FaultRule:
    match: str = "*"
    error_rate: float = 0.0
    error_status: int = 500
    rate_limit_rate: float = 0.0
    lock_timeout_rate: float = 0.0
    lost_response_rate: float = 0.0
    latency_ms: float = 0.0
    id: str = field(default_factory=lambda: f"fault_{next(_ids)}")

    def matches(self, method: str, path: str) -> bool:
        return _compile(self.match).fullmatch(f"{method} {path}") is not None


@dataclass
class _Queued:
    match: str
    kind: str
    remaining: int
    status: int = 500
    id: str = field(default_factory=lambda: f"fail_next_{next(_ids)}")


@dataclass
class Decision:
    """What to do to one request."""
    error: StripeError | None = None  # answer this instead of executing
    lose_response: bool = False          # execute, then drop the connection
    latency_s: float = 0.0
    fault: str | None = None          # which kind fired, for the request log


def _error_for(kind: str, status: int) -> StripeError:
    if kind == "rate_limit":
        return errors.rate_limited()
    if kind == "lock_timeout":
        return errors.lock_timeout()
    return errors.api_error(status)


class FaultInjector:
    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._rules: list[FaultRule] = []
        self._queued: list[_Queued] = []

    def seed(self, seed: int | None) -> None:
        with self._lock:
            self._rng.seed(seed)

    def add(self, rule: FaultRule) -> str:
        for name in ("error_rate", "rate_limit_rate", "lock_timeout_rate", "lost_response_rate"):
            if not 0.0 <= getattr(rule, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if not 500 <= rule.error_status <= 599:
            raise ValueError("error_status must be a 5xx status")
        _compile(rule.match)
        with self._lock:
            self._rules.append(rule)
        return rule.id

    def fail_next(self, match: str, count: int = 1, kind: str = "error",
                  status: int = 500) -> str:
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        _compile(match)
        queued = _Queued(match, kind, count, status)
        with self._lock:
            self._queued.append(queued)
        return queued.id

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._rules) + len(self._queued)
            self._rules = [r for r in self._rules if r.id != fault_id]
            self._queued = [q for q in self._queued if q.id != fault_id]
            return before != len(self._rules) + len(self._queued)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._queued.clear()

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {"rules": [asdict(r) for r in self._rules],
                    "fail_next": [asdict(q) for q in self._queued]}

    def decide(self, method: str, path: str) -> Decision:
        target = f"{method} {path}"
        decision = Decision()
        with self._lock:
            for queued in self._queued:
                if queued.remaining > 0 and _compile(queued.match).fullmatch(target):
                    queued.remaining -= 1
                    self._apply(decision, queued.kind, queued.status)
                    break
            self._queued = [q for q in self._queued if q.remaining > 0]
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                decision.latency_s = max(decision.latency_s, rule.latency_ms / 1000.0)
                if decision.fault is None:
                    self._roll(decision, rule)
        return decision

    def _roll(self, decision: Decision, rule: FaultRule) -> None:
        for kind, rate in (("error", rule.error_rate), ("rate_limit", rule.rate_limit_rate),
                           ("lock_timeout", rule.lock_timeout_rate),
                           ("lost_response", rule.lost_response_rate)):
            if rate and self._rng.random() < rate:
                self._apply(decision, kind, rule.error_status)
                return

    @staticmethod
    def _apply(decision: Decision, kind: str, status: int) -> None:
        decision.fault = kind
        if kind == "lost_response":
            decision.lose_response = True
        else:
            decision.error = _error_for(kind, status)
