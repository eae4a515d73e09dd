"""The on-call CLI as it is used at 3 a.m.: an 80-column terminal, ids pasted by hand, a service that
does not answer, a shell without the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from oncall_support import create_org, dead_letter, failed_invoice, finalized_invoice, sqs

ONCALL = str(Path(sys.executable).parent / "invoicing-oncall")
NOT_LISTENING = "http://127.0.0.1:9"  # the discard port: nothing answers there


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_dlq_list_on_80_columns_shows_ids_whole_and_show_takes_them_or_a_unique_prefix(
        cli, cli_text, queues, monkeypatch):
    invoices = [failed_invoice(create_org(), f"failure {n}") for n in range(3)]
    for invoice in invoices:
        dead_letter(invoice, invoice.sync.last_error)
    ids = [m["message_id"] for m in cli("dlq", "list")[1]["messages"]]
    monkeypatch.setenv("COLUMNS", "80")

    code, text = cli_text("dlq", "list")

    assert code == 0
    assert all(len(line) <= 80 for line in text.splitlines())
    for message_id in ids:
        assert message_id in text, f"{message_id} is cut in:\n{text}"
    code, shown = cli("dlq", "show", ids[0][:8])
    assert code == 0 and shown["message_id"] == ids[0]
    code, text = cli_text("dlq", "show", ids[0][:8])
    assert code == 0 and ids[0] in text
    code, refused = cli("dlq", "show", "")
    assert code == 1 and refused["error"]["code"] == "ambiguous_id"
    code, dry = cli("dlq", "replay", ids[1][:8], "--dry-run")
    assert code == 0 and [o["message_id"] for o in dry["outcomes"]] == [ids[1]]


def test_dlq_list_and_show_give_the_workers_attempts_and_last_error_time_not_sqs_receives(cli, cli_text, queues):
    invoice = failed_invoice(create_org(), "stripe InvalidRequestError (400): No such customer")
    dead_letter(invoice, invoice.sync.last_error)
    for _ in range(3):
        cli("dlq", "list")  # on-call peeks count as SQS receives; they are not attempts

    _, listed = cli("dlq", "list")
    (letter,) = listed["messages"]
    assert letter["invoice"]["sync_attempts"] == 1
    assert letter["invoice"]["last_error_at"] is not None
    code, text = cli_text("dlq", "list")
    assert code == 0 and "receives" not in text and "1 worker attempt" in text and "last error at" in text
    code, text = cli_text("dlq", "show", letter["message_id"])
    assert code == 0
    assert "receives" not in text and "ApproximateReceiveCount" not in text and "SentTimestamp" not in text
    assert "worker attempts" in text and "last error at" in text


def test_an_empty_dlq_says_so(cli_text, queues):
    code, text = cli_text("dlq", "list")
    assert code == 0 and "The dead-letter queue is empty" in text and "message id" not in text


def test_status_speaks_plainly_and_points_failed_invoices_to_dlq_list_and_resync(cli_text, queues):
    code, text = cli_text("status")
    assert code == 0
    assert "gsi1" not in text and "sync_pending" not in text
    assert "Dead-letter queue: empty" in text

    failed = failed_invoice(create_org(), "stripe InvalidRequestError (400)")
    dead_letter(failed, "stripe InvalidRequestError (400)")
    finalized_invoice(create_org())

    code, text = cli_text("status")
    assert code == 0
    assert "waiting for Stripe" in text and "Stripe sync failed" in text
    assert "invoicing-oncall dlq list" in text and "invoicing-oncall resync" in text
    assert "Dead-letter queue: empty" not in text


def _environment(**overrides: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AWS_", "SYNC_", "TABLE_", "STRIPE_", "TOKEN_", "DEV_"))}
    env.update({"COLUMNS": "100", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_DEFAULT_REGION": "us-east-1", **overrides})
    return env


def test_an_unreachable_dynamodb_is_one_line_saying_what_to_check_and_exit_1(queues):
    env = _environment(AWS_ENDPOINT_URL_DYNAMODB=NOT_LISTENING, AWS_ENDPOINT_URL_SQS=os.environ["AWS_ENDPOINT_URL_SQS"],
                       SYNC_QUEUE_URL=queues.sync_url, SYNC_DLQ_URL=queues.dlq_url, TABLE_NAME="invoicing-test")

    result = subprocess.run([ONCALL, "status"], env=env, capture_output=True, text=True, timeout=300)

    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = _lines(result.stderr)
    assert "DynamoDB at http://127.0.0.1:9" in line and "AWS_ENDPOINT_URL_DYNAMODB" in line
    json_run = subprocess.run([ONCALL, "status", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert json_run.returncode == 1 and '"dynamodb_unreachable"' in json_run.stdout


def test_a_shell_without_the_environment_is_told_to_source_the_local_stacks_env_file(queues):
    result = subprocess.run([ONCALL, "dlq", "list"], env=_environment(), capture_output=True, text=True, timeout=300)

    assert result.returncode == 1
    (line,) = _lines(result.stderr)
    assert "SYNC_DLQ_URL is not set" in line or "SYNC_QUEUE_URL is not set" in line
    assert "source .devstack/run/env" in line


def test_a_message_sent_by_hand_to_the_dlq_still_lists(cli_text, queues):
    sqs().send_message(QueueUrl=queues.dlq_url, MessageBody="not json")
    code, text = cli_text("dlq", "list")
    assert code == 0 and "(no invoice)" in text
