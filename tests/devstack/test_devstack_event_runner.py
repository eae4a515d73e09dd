"""EventRunner against DynamoDB Local and moto's SQS server, with fake handlers."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from chalice import Chalice
from devstack_support import Aws
from support.waiting import wait_for

from devstack.event_runner import EventRunner, LambdaContext

RECORD_KEYS = {"eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "eventSourceARN"}
SQS_KEYS = {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody", "eventSource",
            "eventSourceARN", "awsRegion"}


class Recorder:
    """A fake handler: keeps every event and context, answers with ``respond(event)``."""

    def __init__(self, respond: Any = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self.respond = respond

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(json.loads(json.dumps(event)))  # must be plain JSON, as Lambda delivers it
        self.contexts.append(context)
        return self.respond(event) if self.respond else {"batchItemFailures": []}

    @property
    def records(self) -> list[dict[str, Any]]:
        return [record for event in self.events for record in event["Records"]]


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "item"}}


def pk_of(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["Keys"]["pk"]["S"])


def stream_runner(aws: Aws, resources: Any, handler: Any, **options: Any) -> EventRunner:
    return EventRunner(handler, None, stream_arn=resources.stream_arn,
                       dynamodb_streams_endpoint=aws.dynamodb_endpoint, region="us-east-1", **options)


def sqs_runner(aws: Aws, resources: Any, handler: Any, **options: Any) -> EventRunner:
    return EventRunner(None, handler, queue_url=resources.queue_url, sqs_endpoint=aws.sqs_endpoint,
                       region="us-east-1", **options)


def test_table_writes_reach_the_stream_handler_in_lambda_shape(aws: Aws) -> None:
    resources = aws.fresh_resources()
    table = resources.table_name
    aws.dynamodb.put_item(TableName=table, Item={**key("a"), "n": {"N": "1"}, "blob": {"B": b"\x00\x01"},
                                                 "m": {"M": {"tags": {"SS": ["x"]}}}})
    aws.dynamodb.update_item(TableName=table, Key=key("a"), UpdateExpression="SET n = :two",
                             ExpressionAttributeValues={":two": {"N": "2"}})
    aws.dynamodb.delete_item(TableName=table, Key=key("a"))

    # A real Chalice handler: the runner's dict must survive Chalice's own event classes.
    chalice_app = Chalice(app_name="runner-test")
    seen: list[tuple[str, Any, Any, str]] = []

    @chalice_app.on_dynamodb_record(stream_arn=resources.stream_arn)
    def on_change(event: Any) -> dict[str, Any]:
        for record in event:
            seen.append((record.event_name, record.old_image, record.new_image, record.table_name))
        return {"batchItemFailures": []}

    recorder = Recorder(lambda event: on_change(event, recorder.contexts[-1]))
    assert stream_runner(aws, resources, recorder).run_until_idle(timeout_s=15) == 3

    insert, modify, remove = recorder.records
    assert len(recorder.events) == 1  # one batch
    for record in (insert, modify, remove):
        assert set(record) == RECORD_KEYS
        assert record["eventVersion"] == "1.1"
        assert record["eventSource"] == "aws:dynamodb"
        assert record["awsRegion"] == "us-east-1"
        assert record["eventSourceARN"] == resources.stream_arn
        change = record["dynamodb"]
        assert isinstance(change["ApproximateCreationDateTime"], (int, float))
        assert change["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert change["Keys"] == key("a")
        assert isinstance(change["SizeBytes"], int)
    assert [r["eventName"] for r in (insert, modify, remove)] == ["INSERT", "MODIFY", "REMOVE"]
    assert "OldImage" not in insert["dynamodb"] and "NewImage" not in remove["dynamodb"]
    assert insert["dynamodb"]["NewImage"]["blob"] == {"B": base64.b64encode(b"\x00\x01").decode()}
    assert insert["dynamodb"]["NewImage"]["m"] == {"M": {"tags": {"SS": ["x"]}}}
    assert modify["dynamodb"]["OldImage"]["n"] == {"N": "1"}
    assert modify["dynamodb"]["NewImage"]["n"] == {"N": "2"}
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in (insert, modify, remove)]
    assert sequence == sorted(sequence)

    assert [(name, table_name) for name, _old, _new, table_name in seen] == [
        ("INSERT", table), ("MODIFY", table), ("REMOVE", table)]
    assert seen[1][1]["n"] == {"N": "1"} and seen[1][2]["n"] == {"N": "2"}

    context = recorder.contexts[0]
    assert isinstance(context, LambdaContext)
    assert context.function_name.endswith("handle_table_changes")
    assert context.aws_request_id and context.memory_limit_in_mb == 512
    assert 0 < context.get_remaining_time_in_millis() <= 30_000


@pytest.mark.parametrize("shard_held", ["nothing", "records"])
def test_latest_delivers_exactly_what_arrives_after_the_first_read(aws: Aws, shard_held: str) -> None:
    """As Lambda's LATEST, whether the shard was empty or not. (DynamoDB Local answers a LATEST iterator on
    a shard that held nothing with TrimmedDataAccessException once other tables' writes move its sequence
    numbers on; asking for LATEST again would then skip the new records.)"""
    other, resources = aws.fresh_resources(), aws.fresh_resources()
    aws.dynamodb.put_item(TableName=other.table_name, Item=key("elsewhere"))
    if shard_held == "records":
        aws.dynamodb.put_item(TableName=resources.table_name, Item=key("before"))
    recorder = Recorder()
    runner = stream_runner(aws, resources, recorder, starting_position="LATEST")
    assert runner.poll_once() == 0

    aws.dynamodb.put_item(TableName=other.table_name, Item=key("elsewhere-again"))
    aws.dynamodb.put_item(TableName=resources.table_name, Item=key("after"))

    wait_for(lambda: recorder.records, 15, runner.poll_once, "the record written after the first read")
    assert runner.run_until_idle(timeout_s=15) == 0
    assert [pk_of(r) for r in recorder.records] == ["after"]


def test_sqs_messages_reach_the_handler_in_lambda_shape_and_are_deleted(aws: Aws) -> None:
    resources = aws.fresh_resources()
    aws.sqs.send_message(QueueUrl=resources.queue_url, MessageBody='{"invoice": "in_1"}', MessageAttributes={
        "kind": {"DataType": "String", "StringValue": "sync"},
        "attempt": {"DataType": "Number", "StringValue": "3"},
        "raw": {"DataType": "Binary", "BinaryValue": b"\x01\x02"},
    })
    aws.sqs.send_message(QueueUrl=resources.queue_url, MessageBody="second")

    chalice_app = Chalice(app_name="runner-test")
    bodies: list[str] = []

    @chalice_app.on_sqs_message(queue="ignored")
    def on_message(event: Any) -> dict[str, Any]:
        bodies.extend(record.body for record in event)
        return {"batchItemFailures": []}

    recorder = Recorder(lambda event: on_message(event, recorder.contexts[-1]))
    runner = sqs_runner(aws, resources, recorder)
    assert runner.run_until_idle(timeout_s=15) == 2

    assert sorted(bodies) == sorted(['{"invoice": "in_1"}', "second"])
    by_body = {record["body"]: record for record in recorder.records}
    first = by_body['{"invoice": "in_1"}']
    assert SQS_KEYS <= set(first) <= SQS_KEYS | {"md5OfMessageAttributes"}
    assert first["eventSource"] == "aws:sqs"
    assert first["eventSourceARN"] == resources.queue_arn
    assert first["awsRegion"] == "us-east-1"
    assert set(first["attributes"]) == {"ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                        "ApproximateFirstReceiveTimestamp"}
    assert first["attributes"]["ApproximateReceiveCount"] == "1"
    assert first["messageAttributes"]["kind"] == {"stringValue": "sync", "stringListValues": [],
                                                  "binaryListValues": [], "dataType": "String"}
    assert first["messageAttributes"]["attempt"]["dataType"] == "Number"
    assert first["messageAttributes"]["raw"]["binaryValue"] == base64.b64encode(b"\x01\x02").decode()
    assert by_body["second"]["messageAttributes"] == {}
    assert recorder.contexts[0].function_name.endswith("sync_invoices")
    assert aws.queue_counts(resources.queue_url) == (0, 0)


def test_a_message_listed_in_batch_item_failures_is_kept_and_comes_back(aws: Aws) -> None:
    resources = aws.fresh_resources(visibility_seconds=1)
    for body in ("ok-1", "fail-once", "ok-2"):
        aws.sqs.send_message(QueueUrl=resources.queue_url, MessageBody=body)
    failed_once: set[str] = set()

    def respond(event: dict[str, Any]) -> dict[str, Any]:
        failures = []
        for record in event["Records"]:
            if record["body"] == "fail-once" and record["messageId"] not in failed_once:
                failed_once.add(record["messageId"])
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    recorder = Recorder(respond)
    runner = sqs_runner(aws, resources, recorder, sqs_batch_size=10)
    runner.run_until_idle(timeout_s=15)
    assert aws.queue_counts(resources.queue_url) == (0, 1)  # only the failed one, in flight

    def delivered_twice() -> bool:
        return [r["body"] for r in recorder.records].count("fail-once") == 2

    wait_for(delivered_twice, timeout_s=10, step=runner.poll_once)
    again = [r for r in recorder.records if r["body"] == "fail-once"]
    assert again[0]["messageId"] == again[1]["messageId"]
    assert again[1]["attributes"]["ApproximateReceiveCount"] == "2"
    assert sorted(r["body"] for r in recorder.records) == ["fail-once", "fail-once", "ok-1", "ok-2"]
    assert aws.queue_counts(resources.queue_url) == (0, 0)


def test_a_message_that_keeps_failing_lands_in_the_dlq_after_max_receive_count(aws: Aws) -> None:
    # Visibility 0: a failed message is visible again at once, so the receives follow each other quickly.
    resources = aws.fresh_resources(visibility_seconds=0)
    policy = json.loads(aws.sqs.get_queue_attributes(
        QueueUrl=resources.queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])
    max_receive_count = int(policy["maxReceiveCount"])
    assert policy["deadLetterTargetArn"] == resources.dlq_arn

    def explode(event: dict[str, Any]) -> Any:
        raise RuntimeError("poison")

    recorder = Recorder(explode)
    runner = sqs_runner(aws, resources, recorder)
    aws.sqs.send_message(QueueUrl=resources.queue_url, MessageBody="poison")
    dead: list[dict[str, Any]] = []

    def in_dlq() -> bool:
        response = aws.sqs.receive_message(QueueUrl=resources.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        dead.extend(response.get("Messages", []))
        return bool(dead)

    # moto moves the message on the first receive after its count reached maxReceiveCount.
    wait_for(in_dlq, timeout_s=15, step=runner.poll_once)
    assert [m["Body"] for m in dead] == ["poison"]
    assert len(recorder.records) == max_receive_count
    assert [r["attributes"]["ApproximateReceiveCount"] for r in recorder.records] == [
        str(n) for n in range(1, max_receive_count + 1)]
    assert aws.queue_counts(resources.queue_url) == (0, 0)


def test_a_failing_stream_batch_is_retried(aws: Aws) -> None:
    resources = aws.fresh_resources()
    for pk in ("a", "b"):
        aws.dynamodb.put_item(TableName=resources.table_name, Item=key(pk))
    calls = {"n": 0}

    def fail_first(event: dict[str, Any]) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("transient")
        return None  # no response: the whole batch succeeded

    recorder = Recorder(fail_first)
    runner = stream_runner(aws, resources, recorder, bisect_on_error=False, max_retries=3)
    runner.run_until_idle(timeout_s=15)
    assert [[pk_of(r) for r in e["Records"]] for e in recorder.events] == [["a", "b"], ["a", "b"]]
    assert runner.failed_batches == []

    # The shard is checkpointed: new writes are delivered, old ones are not again.
    aws.dynamodb.put_item(TableName=resources.table_name, Item=key("c"))
    runner.run_until_idle(timeout_s=15)
    assert [pk_of(r) for r in recorder.events[-1]["Records"]] == ["c"]


def test_a_partial_stream_failure_retries_from_the_reported_record(aws: Aws) -> None:
    resources = aws.fresh_resources()
    for pk in ("a", "b", "c", "d"):
        aws.dynamodb.put_item(TableName=resources.table_name, Item=key(pk))
    answered: list[str] = []

    def fail_c_once(event: dict[str, Any]) -> dict[str, Any]:
        for record in event["Records"]:
            if pk_of(record) == "c" and "c" not in answered:
                answered.append("c")
                return {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
        return {"batchItemFailures": []}

    recorder = Recorder(fail_c_once)
    runner = stream_runner(aws, resources, recorder)
    runner.run_until_idle(timeout_s=15)
    assert [[pk_of(r) for r in e["Records"]] for e in recorder.events] == [["a", "b", "c", "d"], ["c", "d"]]
    assert runner.failed_batches == []


def test_a_poison_record_is_bisected_out_and_sent_to_the_failure_destination(aws: Aws) -> None:
    resources = aws.fresh_resources()
    for pk in ("a", "b", "poison", "d"):
        aws.dynamodb.put_item(TableName=resources.table_name, Item=key(pk))
    succeeded: list[str] = []

    def reject_poison(event: dict[str, Any]) -> dict[str, Any]:
        keys = [pk_of(r) for r in event["Records"]]
        if "poison" in keys:
            raise ValueError("cannot handle poison")
        succeeded.extend(keys)
        return {"batchItemFailures": []}

    runner = stream_runner(aws, resources, Recorder(reject_poison), max_retries=2)
    runner.run_until_idle(timeout_s=15)

    assert succeeded == ["a", "b", "d"]
    assert len(runner.failed_batches) == 1
    failed = runner.failed_batches[0]
    assert [pk_of(r) for r in failed.records] == ["poison"]
    info = failed.destination_message["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1 and info["streamArn"] == resources.stream_arn
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == failed.sequence_numbers[0]
    assert failed.destination_message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failed.destination_message["requestContext"]["approximateInvokeCount"] == 3  # 1 try + 2 retries
    assert "ValueError" in (failed.error or "")


def test_background_threads_deliver_both_sources_and_stop(aws: Aws) -> None:
    resources = aws.fresh_resources()
    stream, queue = Recorder(), Recorder()
    runner = EventRunner(stream, queue, stream_arn=resources.stream_arn, queue_url=resources.queue_url,
                         dynamodb_streams_endpoint=aws.dynamodb_endpoint, sqs_endpoint=aws.sqs_endpoint,
                         region="us-east-1", sqs_wait_seconds=1)
    with runner:
        assert runner.running
        aws.dynamodb.put_item(TableName=resources.table_name, Item=key("bg"))
        aws.sqs.send_message(QueueUrl=resources.queue_url, MessageBody="bg")
        wait_for(lambda: stream.records and queue.records, timeout_s=10)
        runner.run_until_idle(timeout_s=10)
    assert not runner.running
    assert [pk_of(r) for r in stream.records] == ["bg"]
    assert [r["body"] for r in queue.records] == ["bg"]


def test_constructor_validates_its_arguments() -> None:
    with pytest.raises(ValueError):
        EventRunner(Recorder(), None)  # no stream ARN
    with pytest.raises(ValueError):
        EventRunner(None, Recorder(), queue_url="http://q", sqs_batch_size=11)
