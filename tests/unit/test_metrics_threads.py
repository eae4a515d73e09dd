"""A local API server serves each connection on its own thread, and they share one metric set: flushing
must never fail because another thread emitted the metrics first (that answered a good batch 500)."""

from __future__ import annotations

import threading

from chalicelib import observability


def test_threads_adding_and_flushing_metrics_at_once_never_fail(capsys):
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def batch() -> None:
        start.wait()
        try:
            for _ in range(300):
                observability.record_ingestion({"accepted": 1})
        except BaseException as error:  # any error fails the test below
            errors.append(error)

    threads = [threading.Thread(target=batch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    capsys.readouterr()  # the EMF documents printed meanwhile
    assert errors == []
