"""Work spread over a few processes, so the Python side uses both cores.

Everything here runs in one Python process otherwise (the Stripe emulator and moto's SQS
server included), and the GIL would make that process, not the product, the bottleneck.
Children start with `spawn`, inherit the stack's environment and bind storage afresh; their
output (the app's JSON logs and metrics) goes to a log file per process, not the terminal.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

_LOG_DIR_ENV = "BENCH_PROCESS_LOG_DIR"


def _child_init(log_dir: str | None) -> None:
    if log_dir:
        stream = open(Path(log_dir) / f"process-{os.getpid()}.log", "a", buffering=1)
        sys.stdout = sys.stderr = stream
    from chalicelib.config import reload_settings
    from chalicelib.services.bootstrap import bind_storage

    bind_storage(reload_settings())


class ProcessPool:
    """A few long-lived spawned processes running bench functions (module-level, picklable)."""

    def __init__(self, processes: int, log_dir: Path | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self.processes = processes
        self._pool = context.Pool(processes, initializer=_child_init,
                                  initargs=(str(log_dir) if log_dir else None,))

    def starmap(self, function: Callable[..., Any], arguments: Iterable[tuple[Any, ...]]) -> list[Any]:
        return self._pool.starmap(function, arguments)

    def starmap_async(self, function: Callable[..., Any], arguments: Iterable[tuple[Any, ...]]) -> Any:
        return self._pool.starmap_async(function, arguments)

    def close(self) -> None:
        self._pool.close()
        self._pool.join()

    def __enter__(self) -> ProcessPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is not None:
            self._pool.terminate()
            self._pool.join()
        else:
            self.close()


def start_process(target: Callable[..., Any], args: tuple[Any, ...], log_dir: Path | None) -> Any:
    """One long-running spawned process (e.g. a queue worker); the caller stops and joins it."""
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=_run_in_child, args=(target, args, str(log_dir) if log_dir else None),
                              daemon=True)
    process.start()
    return process


def _run_in_child(target: Callable[..., Any], args: tuple[Any, ...], log_dir: str | None) -> None:
    _child_init(log_dir)
    target(*args)


def spawn_context() -> Any:
    return multiprocessing.get_context("spawn")


def wait_for_stop(stop: Any, limit_s: float) -> None:
    """In a child: return when `stop` is set, when the parent has gone (killed), or after `limit_s`."""
    parent = os.getppid()
    deadline = time.monotonic() + limit_s
    while not stop.wait(1.0):
        if os.getppid() != parent or time.monotonic() > deadline:
            return
