"""`make bench`: start DynamoDB Local, run the benchmarks, print a table, write bench/results.json."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).with_name("results.json")


def main() -> None:
    from devstack.dynamodb_local import DynamoDBLocal
    from devstack.resources import create_local_resources
    from devstack.sqs_local import SqsLocal

    os.environ.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1", "TOKEN_PEPPER": "bench"})
    with DynamoDBLocal() as dynamodb, SqsLocal() as sqs:
        resources = create_local_resources(dynamodb.endpoint_url, sqs.endpoint_url, "invoicing-bench", "bench")
        os.environ.update({"AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint_url, "TABLE_NAME": resources.table_name})
        from chalicelib.config import reload_settings
        from chalicelib.services.bootstrap import bind_storage

        bind_storage(reload_settings())
        from bench import ingest

        service = ingest.service_events_per_second(batches=21)
        put_item = ingest.raw_put_items_per_second(1000)
        batch_write = ingest.raw_batch_write_items_per_second(2000)
    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "ingest_service_batches_of_100": service,
        "raw_put_item": put_item,
        "raw_batch_write_item": batch_write,
        "ratio_service_to_put_item": round(service["events_per_second"] / put_item["items_per_second"], 2),
        "ratio_service_to_batch_write": round(service["events_per_second"] / batch_write["items_per_second"], 2),
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    table = Table(title="Ingestion on DynamoDB Local (same run)")
    table.add_column("measure")
    table.add_column("per second", justify="right")
    table.add_row("usage events accepted, service layer, batches of 100", str(service["events_per_second"]))
    table.add_row("raw single-item PutItem", str(put_item["items_per_second"]))
    table.add_row("raw BatchWriteItem items", str(batch_write["items_per_second"]))
    table.add_row("service ÷ PutItem", str(results["ratio_service_to_put_item"]))
    table.add_row("service ÷ BatchWriteItem", str(results["ratio_service_to_batch_write"]))
    Console().print(table)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
