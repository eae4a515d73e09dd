"""Peak memory of the sync worker on a 1,000-line invoice.

The sync runs in a child process of its own, so the Stripe emulator (which serves it from
this process) and the rest of the benchmark are not in the figure: tracemalloc is started
in the child around one `InvoiceSync.sync` call, after a first small sync in the same child
has paid for lazy imports and client set-up, as a warm Lambda would have.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
import tracemalloc
from datetime import UTC, datetime
from typing import Any

from .common import create_orgs, egress_events, figure, record, rounded, run_id

LINES = 1_000
WARM_LINES = 10


def _finalized(org: str, lines: int) -> str:
    from chalicelib.domain.invoice import invoice_id_for
    from chalicelib.domain.periods import Period
    from chalicelib.services.invoices import InvoiceService

    record(egress_events(org, range(lines), lines, "mem"), 500)
    invoice_id = invoice_id_for(Period.of(datetime.now(UTC)))
    InvoiceService().finalize(org, invoice_id, datetime.now(UTC))
    return invoice_id


def _child(warm: tuple[str, str], target: tuple[str, str], results: Any) -> None:
    """Runs in the child process: environment inherited, storage bound afresh."""
    from chalicelib.config import reload_settings
    from chalicelib.services.bootstrap import bind_storage
    from chalicelib.services.sync import InvoiceSync
    from chalicelib.services.sync_worker import default_gateway

    bind_storage(reload_settings())
    InvoiceSync(default_gateway()).sync(*warm, datetime.now(UTC))
    syncer = InvoiceSync(default_gateway())
    tracemalloc.start()
    started = time.perf_counter()
    result = syncer.sync(*target, datetime.now(UTC))
    elapsed = time.perf_counter() - started
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    results.put({"result": result.value, "peak_bytes": peak, "current_bytes": current, "seconds": elapsed,
                 "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})


def measure(emulator: Any) -> dict[str, Any]:
    warm_org, org = create_orgs(f"bench-mem-{run_id()}", 2)
    warm = (warm_org, _finalized(warm_org, WARM_LINES))
    target = (org, _finalized(org, LINES))
    limits = emulator.set_rate_limits()
    emulator.set_rate_limits(global_per_second=None, per_endpoint_per_second=None)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_child, args=(warm, target, results), name="bench-sync-memory")
    try:
        child.start()
        outcome = results.get(timeout=300)
        child.join(timeout=30)
    finally:
        if child.is_alive():
            child.terminate()
        emulator.set_rate_limits(global_per_second=limits["global_per_second"],
                                 per_endpoint_per_second=limits["per_endpoint_per_second"])
    if outcome["result"] != "synced":
        raise RuntimeError(f"memory benchmark sync ended {outcome['result']}")
    return {
        "sync_peak_memory": figure(
            rounded(outcome["peak_bytes"] / 1_048_576, 2), "MiB",
            {"lines": LINES, "measured_with": "tracemalloc peak around one InvoiceSync.sync, in a separate process"},
            peak_bytes=outcome["peak_bytes"], seconds=rounded(outcome["seconds"], 2),
            process_max_rss_mib=rounded(outcome["max_rss_kb"] / 1024, 1)),
    }
