"""Fixtures of the on-call CLI tests.

Each test gets its own sync queue and DLQ, made from infra/resources.yaml on the session's
moto server, next to the session's real table: queue depths are then exact, and replaying
"everything" can only ever touch this test's messages.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from oncall_support import sqs
from support.environment import EnvironmentOverrides


@dataclass(frozen=True)
class Queues:
    sync_url: str
    dlq_url: str
    sync_arn: str
    dlq_arn: str


@pytest.fixture
def queues(local_aws: Any, set_env: EnvironmentOverrides) -> Iterator[Queues]:
    from devstack.resources import create_local_resources

    resources = create_local_resources(local_aws.dynamodb_endpoint, local_aws.sqs_endpoint, local_aws.table_name,
                                       f"oncall-{uuid.uuid4().hex[:10]}", sync_queue_visibility_seconds=2,
                                       receive_wait_seconds=0)
    set_env(SYNC_QUEUE_URL=resources.queue_url, SYNC_DLQ_URL=resources.dlq_url)
    yield Queues(resources.queue_url, resources.dlq_url, resources.queue_arn, resources.dlq_arn)
    for url in (resources.queue_url, resources.dlq_url):
        sqs().delete_queue(QueueUrl=url)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, Any]]:
    """Run the CLI in process with --json; returns (exit code, parsed stdout)."""
    from chalicelib.oncall.cli import main

    def run(*argv: str) -> tuple[int, Any]:
        capsys.readouterr()  # drop anything printed before (the worker's metrics, say)
        code = main([*argv, "--json"])
        out = capsys.readouterr().out
        return code, json.loads(out) if out.strip() else None

    return run


@pytest.fixture
def cli_text(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str]]:
    """Run the CLI for people; a wide terminal, so rich does not wrap ids across lines."""
    from chalicelib.oncall.cli import main

    monkeypatch.setenv("COLUMNS", "400")

    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return run


@pytest.fixture
def table_stream(local_aws: Any, queues: Any) -> Iterator[Any]:
    """The table's stream handler as Lambda runs it, driven by the test. Call it once the invoices are set
    up: it reads the stream from then on, and `run_until_idle` then sends what the changes call for."""
    import app
    from devstack.event_runner import EventRunner

    def positioned() -> Any:
        runner = EventRunner(app.handle_table_changes, None, stream_arn=local_aws.stream_arn,
                             starting_position="LATEST", max_retries=3)
        runner.poll_once()
        made.append(runner)
        return runner

    made: list[Any] = []
    yield positioned
    for runner in made:
        runner.stop()
