"""The one logger and metrics emitter: structured JSON logs and CloudWatch embedded metrics."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.lambda_context import build_lambda_context_model
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "invoicing"
NAMESPACE = "UsageInvoicing"
LAMBDA_KEYS = ("function_name", "function_memory_size", "function_arn", "function_request_id")
INGESTION_METRICS = {"accepted": "UsageEventsAccepted", "duplicate": "UsageEventsDuplicate",
                     "rejected": "UsageEventsRejected"}

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# Lambda runs one invocation at a time, but a local server runs one thread per connection over this one metric
# set: without the lock, another thread could flush between the check and the flush, and Powertools refuses to
# flush an empty set (the request was answered 500 after its events were written).
_flushing = threading.Lock()


def flush_metrics() -> None:
    """Emit the collected metrics as one EMF document; nothing when there is nothing to say."""
    with _flushing:
        if metrics.metric_set:
            metrics.flush_metrics()


def bind_lambda_context(context: Any) -> None:
    """Every log line of this invocation carries its Lambda request id (`function_request_id`) and function,
    through Powertools' own Lambda context model, so one request can be followed across its lines."""
    if context is None or not hasattr(context, "aws_request_id"):
        logger.remove_keys(list(LAMBDA_KEYS))
        return
    logger.append_keys(**vars(build_lambda_context_model(context)))


def record_ingestion(counts: Mapping[str, int]) -> None:
    """One usage batch's answers as metrics: the dashboard graphs rejected events as ingestion errors."""
    for status, name in INGESTION_METRICS.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts.get(status, 0))
    flush_metrics()
