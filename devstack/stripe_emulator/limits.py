"""Request rate limits answered with 429 ``rate_limit``.

Stripe limits live mode to about 100 requests per second per account, with
lower limits on some endpoints (about 25 per second). Each limit here is a
sliding one-second window over admitted requests: a request is admitted when
fewer than ``limit`` requests were admitted in the last second, both
account-wide and for its endpoint. ``None`` disables a limit.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Any

DEFAULT_GLOBAL_PER_SECOND = 100
DEFAULT_ENDPOINT_PER_SECOND = 25
WINDOW_SECONDS = 1.0
KEEP: Any = object()  # marks an argument that was not given


class RateLimiter:
    def __init__(self, global_per_second: int | None = DEFAULT_GLOBAL_PER_SECOND,
                 per_endpoint_per_second: int | None = DEFAULT_ENDPOINT_PER_SECOND,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.global_per_second = global_per_second
        self.per_endpoint_per_second = per_endpoint_per_second
        # Limits for single endpoints ("POST /v1/invoices/{invoice}/add_lines").
        self.endpoint_overrides: dict[str, int | None] = {}
        self._global: collections.deque[float] = collections.deque()
        self._by_endpoint: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)

    def configure(self, *, global_per_second: Any = KEEP,
                  per_endpoint_per_second: Any = KEEP,
                  endpoint_overrides: Any = KEEP) -> None:
        """Change limits; arguments left out keep their value, None lifts one."""
        with self._lock:
            if global_per_second is not KEEP:
                self.global_per_second = global_per_second
            if per_endpoint_per_second is not KEEP:
                self.per_endpoint_per_second = per_endpoint_per_second
            if endpoint_overrides is not KEEP:
                self.endpoint_overrides = dict(endpoint_overrides or {})

    def describe(self) -> dict[str, object]:
        with self._lock:
            return {"global_per_second": self.global_per_second,
                    "per_endpoint_per_second": self.per_endpoint_per_second,
                    "endpoint_overrides": dict(self.endpoint_overrides)}

    def admit(self, endpoint: str) -> bool:
        """Record and admit the request, or return False for a 429."""
        with self._lock:
            now = self._clock()
            endpoint_limit = self.endpoint_overrides.get(endpoint, self.per_endpoint_per_second)
            window = self._by_endpoint[endpoint]
            for queue in (self._global, window):
                while queue and queue[0] <= now - WINDOW_SECONDS:
                    queue.popleft()
            if self.global_per_second is not None and len(self._global) >= self.global_per_second:
                return False
            if endpoint_limit is not None and len(window) >= endpoint_limit:
                return False
            self._global.append(now)
            window.append(now)
            return True

    def reset(self) -> None:
        with self._lock:
            self._global.clear()
            self._by_endpoint.clear()
