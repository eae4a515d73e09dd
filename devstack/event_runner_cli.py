"""The event runner as its own process, for the long-running local stack (`python -m devstack.stack up`).

    python -m devstack.event_runner_cli [--batch-size 100] [--sqs-batch-size N] [--max-retries 10]

Settings come from the same environment variables as the app (see ``devstack/env.py``), the handlers from
the module ``app``; it runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from devstack.event_runner import (
    EXIT_NO_HANDLERS,
    SQS_HANDLER_NAME,
    STREAM_HANDLER_NAME,
    EventRunner,
    MissingHandlersError,
    load_app_handlers,
)
from devstack.runner_group import with_deliveries

logger = logging.getLogger("devstack.event_runner")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.event_runner_cli",
        description="Deliver the table stream and the sync queue to the app's Lambda handlers, locally.",
    )
    parser.add_argument("--app-module", default="app")
    parser.add_argument("--batch-size", type=int, help="stream batch size (default: the decorator's, else 100)")
    parser.add_argument("--sqs-batch-size", type=int, help="SQS batch size (default: the decorator's, else 10)")
    parser.add_argument("--max-retries", type=int, default=10, help="stream batch retries, -1 = forever")
    parser.add_argument("--no-bisect", action="store_true", help="do not bisect a failing stream batch")
    parser.add_argument("--starting-position", default="TRIM_HORIZON", choices=["TRIM_HORIZON", "LATEST"])
    parser.add_argument("--sqs-wait-seconds", type=int, default=1)
    parser.add_argument("--on-failure-queue-url", help="send discarded stream batches' info to this queue")
    parser.add_argument("--ready-file", help="create this file once the first pass is done")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stdout,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    project_root = str(Path(__file__).resolve().parent.parent)
    if project_root not in sys.path:
        sys.path.insert(0, project_root)
    try:
        handlers = load_app_handlers(args.app_module)
    except MissingHandlersError as exc:
        print(f"event runner: {exc}; nothing to run", file=sys.stderr, flush=True)
        return EXIT_NO_HANDLERS
    for name, handler in ((STREAM_HANDLER_NAME, handlers.stream_handler), (SQS_HANDLER_NAME, handlers.sqs_handler)):
        if handler is None:
            logger.warning("%s.%s is not defined: that event source is not polled", args.app_module, name)

    options = handlers.runner_options()
    if args.batch_size:
        options["batch_size"] = args.batch_size
    if args.sqs_batch_size:
        options["sqs_batch_size"] = args.sqs_batch_size
    runner = EventRunner.from_environment(
        handlers.stream_handler,
        handlers.sqs_handler,
        max_retries=args.max_retries,
        bisect_on_error=not args.no_bisect,
        starting_position=args.starting_position,
        sqs_wait_seconds=args.sqs_wait_seconds,
        on_failure_queue_url=args.on_failure_queue_url,
        **options,
    )
    runner = with_deliveries(runner, args.app_module, sqs_wait_seconds=args.sqs_wait_seconds)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runner.start()
    logger.info("event runner started: stream %s, queue %s", runner.stream_arn if handlers.stream_handler else "-",
                runner.queue_url if handlers.sqs_handler else "-")
    try:
        if args.ready_file:
            try:
                runner.run_until_idle(timeout_s=60.0)
            except TimeoutError:
                pass  # busy is fine: it is polling
            Path(args.ready_file).touch()
        while not stopping.wait(0.5):
            if not runner.running:
                logger.error("event runner threads ended unexpectedly")
                return 1
    finally:
        runner.stop()
        logger.info("event runner stopped: %s", dict(runner.stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
