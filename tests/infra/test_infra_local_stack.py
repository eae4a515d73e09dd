"""The local stack (DynamoDB Local + moto's SQS server) built from infra/resources.yaml, on the servers the
test session shares; the tests of the servers' own lifecycle start their own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from infra_support import ROOT
from support.waiting import wait_for

from devstack.dynamodb_local import DynamoDBLocal, DynamoDBLocalError, find_dynamodb_local_jar
from devstack.resources import LocalResourceError, LocalResources, create_local_resources
from devstack.sqs_local import SqsLocal
from devstack.template import queue_attributes, table_definition

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
TABLE = "usage-invoicing-test"
PREFIX = "usage-invoicing-test"


@pytest.fixture(scope="module")
def local(dynamodb_server: DynamoDBLocal, sqs_server: SqsLocal) -> LocalResources:
    return create_local_resources(
        dynamodb_server.endpoint_url,
        sqs_server.endpoint_url,
        TABLE,
        PREFIX,
        REGION,
        receive_wait_seconds=0,
    )


@pytest.fixture(scope="module")
def ddb(dynamodb_server: DynamoDBLocal) -> Any:
    return boto3.client("dynamodb", endpoint_url=dynamodb_server.endpoint_url, region_name=REGION, **CREDENTIALS)


@pytest.fixture(scope="module")
def sqs(sqs_server: SqsLocal) -> Any:
    return boto3.client("sqs", endpoint_url=sqs_server.endpoint_url, region_name=REGION, **CREDENTIALS)


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of LISTEN sockets on ``port`` (from /proc/net/tcp and tcp6)."""
    addresses = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local_address, state = fields[1], fields[3]
            address_hex, port_hex = local_address.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                addresses.add(address_hex)
    return addresses


IPV4_LOOPBACK = "0100007F"  # 127.0.0.1, little-endian as /proc prints it
IPV6_MAPPED_LOOPBACK = "0000000000000000FFFF00000100007F"  # ::ffff:127.0.0.1


def test_dynamodb_local_listens_on_loopback_only(dynamodb_server: DynamoDBLocal) -> None:
    assert dynamodb_server.endpoint_url == f"http://127.0.0.1:{dynamodb_server.port}"
    addresses = _listening_addresses(dynamodb_server.port or 0)
    assert addresses, "no listening socket found for DynamoDB Local"
    if dynamodb_server.bind_host == "127.0.0.1":
        assert addresses <= {IPV4_LOOPBACK, IPV6_MAPPED_LOOPBACK}, addresses
    else:
        # Only without javac: the plain jar has no way to choose the address.
        assert shutil.which("javac") is None
        assert dynamodb_server.bind_host == "0.0.0.0"


def test_sqs_local_listens_on_loopback_only(sqs_server: SqsLocal) -> None:
    assert sqs_server.endpoint_url == f"http://127.0.0.1:{sqs_server.port}"
    assert _listening_addresses(sqs_server.port or 0) == {IPV4_LOOPBACK}


def test_table_matches_template(local: LocalResources, ddb: Any, resources_template: dict[str, Any]) -> None:
    wanted = table_definition(resources_template, TABLE)
    create = wanted["create_table"]
    table = ddb.describe_table(TableName=local.table_name)["Table"]

    assert table["TableStatus"] == "ACTIVE"
    assert table["KeySchema"] == create["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
        create["AttributeDefinitions"], key=lambda a: a["AttributeName"]
    )
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    (gsi,) = table["GlobalSecondaryIndexes"]
    (wanted_gsi,) = create["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == wanted_gsi["IndexName"] == "gsi1"
    assert gsi["KeySchema"] == wanted_gsi["KeySchema"]
    assert gsi["Projection"] == {"ProjectionType": "ALL"}
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["LatestStreamArn"] == local.stream_arn

    def ttl_enabled() -> dict[str, Any] | None:
        description: dict[str, Any] = ddb.describe_time_to_live(TableName=local.table_name)["TimeToLiveDescription"]
        return description if description.get("TimeToLiveStatus") == "ENABLED" else None

    ttl = wait_for(ttl_enabled, what="the table's TTL to be enabled")
    assert ttl["AttributeName"] == wanted["time_to_live"]["AttributeName"] == "expires_at"


def test_stream_is_readable(local: LocalResources, dynamodb_server: DynamoDBLocal) -> None:
    streams = boto3.client(
        "dynamodbstreams", endpoint_url=dynamodb_server.endpoint_url, region_name=REGION, **CREDENTIALS
    )
    description = streams.describe_stream(StreamArn=local.stream_arn)["StreamDescription"]
    assert description["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert description["TableName"] == local.table_name


def test_queues_match_template(local: LocalResources, sqs: Any, resources_template: dict[str, Any]) -> None:
    assert local.queue_url.endswith("/" + PREFIX + "-sync")
    assert local.dlq_url.endswith("/" + PREFIX + "-sync-dlq")
    queue = sqs.get_queue_attributes(QueueUrl=local.queue_url, AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=local.dlq_url, AttributeNames=["All"])["Attributes"]
    assert queue["QueueArn"] == local.queue_arn
    assert dlq["QueueArn"] == local.dlq_arn

    template_queue = resources_template["Resources"]["SyncQueue"]["Properties"]
    template_dlq = resources_template["Resources"]["SyncDLQ"]["Properties"]
    redrive = json.loads(queue["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == local.dlq_arn
    assert int(redrive["maxReceiveCount"]) == template_queue["RedrivePolicy"]["maxReceiveCount"]
    assert int(dlq["MessageRetentionPeriod"]) == template_dlq["MessageRetentionPeriod"] == 1209600
    assert int(queue["MessageRetentionPeriod"]) == template_queue["MessageRetentionPeriod"]
    assert queue["SqsManagedSseEnabled"] == dlq["SqsManagedSseEnabled"] == "true"
    # Default visibility comes from the template mapping (6 x 60 s).
    assert int(queue["VisibilityTimeout"]) == 360
    assert int(queue["ReceiveMessageWaitTimeSeconds"]) == 0  # overridden for tests


def test_redrive_allow_policy_names_the_local_source_queue(
    local: LocalResources, resources_template: dict[str, Any]
) -> None:
    # moto accepts RedriveAllowPolicy but does not return it, so check what is sent.
    delivery_dlq_arn = local.dlq_arn.replace("-sync-dlq", "-deliveries-dlq")
    queues = {
        "SyncQueue": {"Arn": local.queue_arn, "QueueUrl": local.queue_url, "QueueName": PREFIX + "-sync"},
        "SyncDLQ": {"Arn": local.dlq_arn, "QueueUrl": local.dlq_url, "QueueName": PREFIX + "-sync-dlq"},
        "DeliveryQueue": {"Arn": local.delivery_queue_arn, "QueueUrl": local.delivery_queue_url,
                          "QueueName": PREFIX + "-deliveries"},
        "DeliveryDLQ": {"Arn": delivery_dlq_arn, "QueueUrl": local.delivery_dlq_url,
                        "QueueName": PREFIX + "-deliveries-dlq"},
    }
    attributes = queue_attributes(resources_template, queues, PREFIX, REGION)
    assert list(attributes) == ["SyncDLQ", "DeliveryDLQ", "SyncQueue", "DeliveryQueue"]
    assert json.loads(attributes["SyncDLQ"]["RedriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [local.queue_arn],
    }
    assert json.loads(attributes["SyncQueue"]["RedrivePolicy"]) == {
        "deadLetterTargetArn": local.dlq_arn,
        "maxReceiveCount": 5,
    }


def test_poison_message_moves_to_the_dlq(local: LocalResources, sqs: Any) -> None:
    sqs.send_message(QueueUrl=local.queue_url, MessageBody="poison")
    max_receives = json.loads(
        sqs.get_queue_attributes(QueueUrl=local.queue_url, AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )["maxReceiveCount"]
    for _ in range(int(max_receives)):
        messages = sqs.receive_message(QueueUrl=local.queue_url, VisibilityTimeout=0, WaitTimeSeconds=0).get(
            "Messages", []
        )
        assert [m["Body"] for m in messages] == ["poison"]
    # One receive past maxReceiveCount hands the message to the DLQ.
    assert sqs.receive_message(QueueUrl=local.queue_url, WaitTimeSeconds=0).get("Messages", []) == []
    moved = wait_for(lambda: sqs.receive_message(QueueUrl=local.dlq_url, WaitTimeSeconds=0).get("Messages"),
                     what="the message in the DLQ")
    assert [m["Body"] for m in moved] == ["poison"]
    sqs.delete_message(QueueUrl=local.dlq_url, ReceiptHandle=moved[0]["ReceiptHandle"])


def test_create_is_idempotent_and_visibility_can_be_overridden(
    local: LocalResources, dynamodb_server: DynamoDBLocal, sqs_server: SqsLocal, sqs: Any
) -> None:
    again = create_local_resources(
        dynamodb_server.endpoint_url,
        sqs_server.endpoint_url,
        TABLE,
        PREFIX,
        REGION,
        sync_queue_visibility_seconds=2,
        receive_wait_seconds=0,
    )
    assert again == local
    queue = sqs.get_queue_attributes(QueueUrl=local.queue_url, AttributeNames=["VisibilityTimeout"])
    assert queue["Attributes"]["VisibilityTimeout"] == "2"
    # Back to the template's value for the tests that follow.
    create_local_resources(
        dynamodb_server.endpoint_url, sqs_server.endpoint_url, TABLE, PREFIX, REGION, receive_wait_seconds=0
    )
    queue = sqs.get_queue_attributes(QueueUrl=local.queue_url, AttributeNames=["VisibilityTimeout"])
    assert queue["Attributes"]["VisibilityTimeout"] == "360"


def test_delivery_queues_are_created(local: LocalResources) -> None:
    assert local.delivery_queue_url.endswith("/" + PREFIX + "-deliveries")
    assert local.delivery_dlq_url.endswith("/" + PREFIX + "-deliveries-dlq")
    assert local.delivery_queue_arn.endswith(":" + PREFIX + "-deliveries")


def test_existing_table_with_other_keys_is_rejected(
    dynamodb_server: DynamoDBLocal, sqs_server: SqsLocal, ddb: Any
) -> None:
    ddb.create_table(
        TableName="other-shape",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(LocalResourceError, match="key schema"):
        create_local_resources(dynamodb_server.endpoint_url, sqs_server.endpoint_url, "other-shape", "other", REGION)


def test_unknown_template_parameter_is_rejected(dynamodb_server: DynamoDBLocal, sqs_server: SqsLocal) -> None:
    with pytest.raises(LocalResourceError, match="unknown template parameter"):
        create_local_resources(
            dynamodb_server.endpoint_url,
            sqs_server.endpoint_url,
            TABLE,
            PREFIX,
            REGION,
            parameters={"NoSuchParameter": 1},
        )


def test_missing_jar_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DynamoDBLocalError, match="jar not found"):
        DynamoDBLocal(jar=tmp_path / "DynamoDBLocal.jar").start()
    with pytest.raises(DynamoDBLocalError, match="npm install"):
        find_dynamodb_local_jar(tmp_path)


def test_missing_java_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DynamoDBLocalError, match="java executable not found"):
        DynamoDBLocal(java=str(tmp_path / "java")).start()


@pytest.mark.slow  # a process
def test_sqs_local_runs_as_a_separate_process() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.sqs_local", "--port", "0"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        endpoint = process.stdout.readline().strip()
        assert endpoint.startswith("http://127.0.0.1:"), process.stderr.read() if process.stderr else ""
        client = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION, **CREDENTIALS)
        url = client.create_queue(QueueName="separate-process")["QueueUrl"]
        assert url.endswith("/separate-process")
    finally:
        process.terminate()
        try:
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=15)


def test_jar_is_installed_where_the_makefile_puts_it() -> None:
    jar = find_dynamodb_local_jar()
    assert jar.name == "DynamoDBLocal.jar"
    assert (jar.parent / "DynamoDBLocal_lib").is_dir()


CHILD_SCRIPT = """
import os, signal, sys
from devstack.dynamodb_local import DynamoDBLocal
server = DynamoDBLocal()
server.start()
print(server.pid, flush=True)
if sys.argv[1] == "sigkill":
    os.kill(os.getpid(), signal.SIGKILL)
# "exit": leave without stop(); the atexit hook must end the server.
"""


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0) until reaped; treat it as ended.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" in status.read_text()


@pytest.mark.slow  # two processes, each with its own DynamoDB Local
def test_server_does_not_outlive_its_python_process_whether_it_exits_or_is_killed() -> None:
    endings = ("exit", "sigkill")
    children = {ending: subprocess.Popen([sys.executable, "-c", CHILD_SCRIPT, ending], cwd=ROOT,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True)
                for ending in endings}  # both at once: each spends its time starting a JVM
    servers: dict[str, int] = {}
    try:
        for ending, child in children.items():
            out, err = child.communicate(timeout=120)
            assert out.split(), f"{ending}: the child printed no pid: {err[-2000:]}"
            servers[ending] = int(out.split()[0])
        for ending, pid in servers.items():
            wait_for(lambda: _process_gone(pid), 20, what=f"the server of the child that ended by {ending}")  # noqa: B023
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
        for pid in servers.values():
            if not _process_gone(pid):
                os.kill(pid, 9)
