"""DynamoDB Local's CPU on one fixed set of requests, with the JVM's defaults and with devstack's options.

    .venv/bin/python -m bench.ddb_jvm [--rounds N]

Each setting starts its own server and sends the same sequential requests (puts, consistent gets, two-item
transactions with a condition, scans) to a table with a stream, as the app's table has. It prints the
server's CPU seconds (user + system, from /proc) and the median latency of each kind. Lower CPU is what
matters on a 2-core machine where the tests and the server share the cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from devstack.dynamodb_local import JVM_OPTIONS, DynamoDBLocal
from devstack.local_aws import client as local_client

TABLE = "bench-jvm"


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _median_ms(timings: list[float]) -> float:
    return round(1000 * statistics.median(timings), 1)


def _timed(count: int, request: Callable[[int], Any]) -> list[float]:
    timings = []
    for index in range(count):
        started = time.perf_counter()
        request(index)
        timings.append(time.perf_counter() - started)
    return timings


def measure(jvm_options: tuple[str, ...], rounds: int) -> dict[str, Any]:
    with DynamoDBLocal(jvm_options=jvm_options) as server:
        client = local_client("dynamodb", server.endpoint_url)
        client.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})

        def key(index: int) -> dict[str, Any]:
            return {"pk": {"S": f"p{index % 50}"}, "sk": {"S": f"s{index}"}}

        def transact(index: int) -> None:
            client.transact_write_items(TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {"pk": {"S": f"x{index}"}, "sk": {"S": "a"}},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Update": {"TableName": TABLE, "Key": key(index), "UpdateExpression": "ADD v :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}}}}])

        cpu_before = _cpu_seconds(server.pid)
        started = time.monotonic()
        puts = _timed(3 * rounds, lambda i: client.put_item(TableName=TABLE, Item={**key(i), "v": {"N": str(i)}}))
        gets = _timed(3 * rounds, lambda i: client.get_item(TableName=TABLE, Key=key(i), ConsistentRead=True))
        transactions = _timed(rounds, transact)
        scans = _timed(rounds // 2, lambda i: client.scan(TableName=TABLE, Limit=100))
        return {"jvm_options": " ".join(jvm_options) or "(defaults)",
                "requests": len(puts) + len(gets) + len(transactions) + len(scans),
                "seconds": round(time.monotonic() - started, 1),
                "server_cpu_seconds": round(_cpu_seconds(server.pid) - cpu_before, 1),
                "median_ms": {"put": _median_ms(puts), "get": _median_ms(gets),
                              "transaction": _median_ms(transactions), "scan": _median_ms(scans)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=500, help="transactions; 3x as many puts and gets")
    rounds = parser.parse_args().rounds
    for options in ((), JVM_OPTIONS):
        print(measure(options, rounds), flush=True)


if __name__ == "__main__":
    main()
