"""Run the emulator in the foreground:

    python -m devstack.stripe_emulator --port 12111 \
        --webhook-url http://127.0.0.1:8000/stripe/webhook --webhook-secret whsec_...

SIGINT or SIGTERM stops it cleanly.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from .emulator import StripeEmulator
from .idempotency import DEFAULT_TTL_SECONDS
from .limits import DEFAULT_ENDPOINT_PER_SECOND, DEFAULT_GLOBAL_PER_SECOND


def _limit(value: str) -> int | None:
    """A per-second limit; 0 or "none" means unlimited."""
    if value.lower() in ("0", "none", "off"):
        return None
    return int(value)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.stripe_emulator",
                                     description="Stateful Stripe API emulator on loopback.")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=12111, help="0 picks a free port")
    parser.add_argument("--webhook-url", help="where invoice.* events are POSTed")
    parser.add_argument("--webhook-secret", help="whsec_ signing secret (random if absent)")
    parser.add_argument("--api-key", action="append", default=[],
                        help="accept this key besides any sk_test_ key (repeatable)")
    parser.add_argument("--global-rate-limit", type=_limit, default=DEFAULT_GLOBAL_PER_SECOND,
                        help="requests per second for the account (0 = unlimited)")
    parser.add_argument("--endpoint-rate-limit", type=_limit,
                        default=DEFAULT_ENDPOINT_PER_SECOND,
                        help="requests per second per endpoint (0 = unlimited)")
    parser.add_argument("--idempotency-ttl", type=float, default=DEFAULT_TTL_SECONDS,
                        help="seconds an idempotency key is remembered")
    parser.add_argument("--max-invoice-lines", type=int, default=250)
    parser.add_argument("--seed", type=int, help="seed for fault injection")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    emulator = StripeEmulator(
        api_keys=args.api_key, webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret, global_rate_limit=args.global_rate_limit,
        endpoint_rate_limit=args.endpoint_rate_limit,
        idempotency_ttl_seconds=args.idempotency_ttl, seed=args.seed,
        max_invoice_lines=args.max_invoice_lines, verbose=args.verbose)
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    url = emulator.start(args.host, args.port)
    print(f"Stripe emulator listening on {url} (admin: {url}/_emulator/state)", flush=True)
    if args.webhook_url:
        print(f"Sending webhooks to {args.webhook_url} signed with {emulator.webhook_secret}",
              flush=True)
    while not stopping.wait(0.5):
        pass
    emulator.stop()
    print("Stripe emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
