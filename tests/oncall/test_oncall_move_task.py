"""`dlq replay --all` on AWS: invoices marked pending, then one SQS message move task.

moto has no message move tasks, so SQS is botocore's Stubber here (it checks every call
against the real API model); the invoices are real, in DynamoDB Local.
"""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from oncall_support import create_org, failed_invoice, stored

DLQ = "https://sqs.us-east-1.amazonaws.com/123456789012/invoicing-prod-sync-dlq"
SYNC = "https://sqs.us-east-1.amazonaws.com/123456789012/invoicing-prod-sync"
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:invoicing-prod-sync-dlq"
SYNC_ARN = "arn:aws:sqs:us-east-1:123456789012:invoicing-prod-sync"
RECEIVE = {
    "QueueUrl": DLQ, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1, "VisibilityTimeout": 30,
    "MessageSystemAttributeNames": ["SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp"],
    "MessageAttributeNames": ["All"],
}


def aws_sqs() -> tuple[object, Stubber]:
    client = boto3.client("sqs", region_name="us-east-1", endpoint_url="https://sqs.us-east-1.amazonaws.com",
                          aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="example")
    return client, Stubber(client)


def message(message_id: str, body: str) -> dict:
    return {"MessageId": message_id, "ReceiptHandle": f"rh-{message_id}", "Body": body,
            "Attributes": {"SentTimestamp": "1795770000000", "ApproximateReceiveCount": "6"},
            "MessageAttributes": {"reason": {"StringValue": "permanent", "DataType": "String"}}}


@pytest.fixture
def dead(local_aws):
    """A failed invoice and its dead letter, plus one unreadable message."""
    from chalicelib.domain.sync_message import SyncMessage

    invoice = failed_invoice(create_org(), "stripe said no")
    body = SyncMessage(invoice.org, invoice.id, invoice.sync.requested_at).body()
    return invoice, [message("m-invoice", body), message("m-junk", "not json")]


def peek_and_release(stub: Stubber, messages: list[dict], resent_by_stream: tuple[str, ...] = ("m-invoice",)) -> None:
    """The scan: a resynced invoice's message is deleted (the table's stream sends its sync message);
    the rest are made visible again for the move task."""
    stub.add_response("receive_message", {"Messages": messages}, RECEIVE)
    stub.add_response("receive_message", {}, RECEIVE)
    for m in messages:
        if m["MessageId"] in resent_by_stream:
            stub.add_response("delete_message", {}, {"QueueUrl": DLQ, "ReceiptHandle": m["ReceiptHandle"]})
    left = [m for m in messages if m["MessageId"] not in resent_by_stream]
    stub.add_response("change_message_visibility_batch", {"Successful": [{"Id": "0"}], "Failed": []}, {
        "QueueUrl": DLQ,
        "Entries": [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(left)],
    })
    stub.add_response("get_queue_attributes", {"Attributes": {"QueueArn": DLQ_ARN}},
                      {"QueueUrl": DLQ, "AttributeNames": ["QueueArn"]})
    stub.add_response("get_queue_attributes", {"Attributes": {"QueueArn": SYNC_ARN}},
                      {"QueueUrl": SYNC, "AttributeNames": ["QueueArn"]})


def replay_all(client: object, now: datetime):
    from chalicelib.oncall.dlq import DeadLetterQueue
    from chalicelib.storage.invoices import InvoiceRepository

    return DeadLetterQueue(client, DLQ, SYNC, InvoiceRepository(), local=False).replay_all(now, dry_run=False)


def test_on_aws_replay_all_marks_invoices_pending_then_starts_one_move_task(dead):
    invoice, messages = dead
    client, stub = aws_sqs()
    peek_and_release(stub, messages)
    stub.add_response("list_message_move_tasks", {"Results": []}, {"SourceArn": DLQ_ARN, "MaxResults": 10})
    stub.add_response("start_message_move_task", {"TaskHandle": "task-1"},
                      {"SourceArn": DLQ_ARN, "DestinationArn": SYNC_ARN})
    now = datetime.now(UTC)

    with stub:
        report = replay_all(client, now)

    stub.assert_no_pending_responses()
    assert (report.method, report.move_task) == ("message-move-task", "task-1")
    assert {o.message_id: o.action.value for o in report.outcomes} == {"m-invoice": "resync", "m-junk": "skip"}
    after = stored(invoice.org, invoice.id)
    assert after.sync.state.value == "pending" and after.sync.requested_at == now


def test_on_aws_a_running_move_task_is_reported_and_no_second_one_is_started(dead):
    _, messages = dead
    client, stub = aws_sqs()
    peek_and_release(stub, messages)
    stub.add_response("list_message_move_tasks", {"Results": [
        {"TaskHandle": "task-0", "Status": "RUNNING", "SourceArn": DLQ_ARN, "ApproximateNumberOfMessagesMoved": 3},
    ]}, {"SourceArn": DLQ_ARN, "MaxResults": 10})

    with stub:
        report = replay_all(client, datetime.now(UTC))

    stub.assert_no_pending_responses()  # and no start_message_move_task: it was never stubbed
    assert report.move_task == "task-0" and "already running" in (report.note or "")


def test_when_sqs_lacks_move_tasks_replay_all_moves_each_message_itself(dead):

    invoice, messages = dead
    client, stub = aws_sqs()
    peek_and_release(stub, messages)
    stub.add_response("list_message_move_tasks", {"Results": []}, {"SourceArn": DLQ_ARN, "MaxResults": 10})
    stub.add_client_error("start_message_move_task", "UnsupportedOperation", http_status_code=400)
    now = datetime.now(UTC)
    # The fallback: receive what is left and move it; the resynced invoice's message was already deleted
    # (the stream sends its sync message), and the unreadable message stays.
    stub.add_response("receive_message", {"Messages": [messages[1]]}, RECEIVE)
    stub.add_response("receive_message", {}, RECEIVE)
    stub.add_response("change_message_visibility_batch", {"Successful": [{"Id": "0"}], "Failed": []}, {
        "QueueUrl": DLQ, "Entries": [{"Id": "0", "ReceiptHandle": "rh-m-junk", "VisibilityTimeout": 0}]})

    with stub:
        report = replay_all(client, now)

    stub.assert_no_pending_responses()
    assert (report.method, report.moved, report.skipped) == ("receive-send-delete", 1, 1)
    assert {o.message_id: o.action.value for o in report.outcomes} == {"m-invoice": "resync", "m-junk": "skip"}
    assert stored(invoice.org, invoice.id).sync.state.value == "pending"


def test_on_aws_an_invoice_with_several_dead_letters_is_replayed_once(dead):
    invoice, messages = dead
    again = message("m-again", messages[0]["Body"])
    client, stub = aws_sqs()
    peek_and_release(stub, [messages[0], again, messages[1]], resent_by_stream=("m-invoice", "m-again"))
    stub.add_response("list_message_move_tasks", {"Results": []}, {"SourceArn": DLQ_ARN, "MaxResults": 10})
    stub.add_response("start_message_move_task", {"TaskHandle": "task-2"},
                      {"SourceArn": DLQ_ARN, "DestinationArn": SYNC_ARN})

    with stub:
        report = replay_all(client, datetime.now(UTC))

    stub.assert_no_pending_responses()  # both deleted, neither left for the task to move
    assert {o.message_id: o.action.value for o in report.outcomes} == {
        "m-invoice": "resync", "m-again": "drop", "m-junk": "skip"}
    assert stored(invoice.org, invoice.id).sync.state.value == "pending"
