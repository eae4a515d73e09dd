"""The one logger and metrics emitter: structured JSON logs and CloudWatch embedded metrics."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

SERVICE = "invoicing"
NAMESPACE = "UsageInvoicing"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def flush_metrics() -> None:
    """Emit the collected metrics as one EMF document; nothing when there is nothing to say."""
    if metrics.metric_set:
        metrics.flush_metrics()
