"""Running one command of an operator's CLI: settings, failures as one readable line, exit codes.

Under pressure a traceback hides the one fact that matters (which service did not answer,
which variable is missing), so every failure an operator can fix is one line saying what
failed and what to check, and exit code 1.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError
from pynamodb.exceptions import PynamoDBException
from rich.console import Console, RenderableType

from .. import clock
from ..config import MissingSecret, Settings, settings
from ..domain.errors import DomainError
from ..observability import logger
from ..services.bootstrap import bind_storage
from . import render

EXIT_OK, EXIT_ATTENTION = 0, 1
Answer = tuple[int, Any, RenderableType]  # exit code, JSON payload, human view
LOCAL_ENV_HINT = "with the local stack, `source .devstack/run/env` first (`make up` writes it)"


class MissingSetting(Exception):
    code = "missing_setting"

    def __init__(self, name: str, what: str) -> None:
        super().__init__(f"{name} is not set: {LOCAL_ENV_HINT}; on AWS, set it to {what}")


def required(name: str, value: str, what: str) -> str:
    if not value:
        raise MissingSetting(name, what)
    return value


@contextlib.contextmanager
def diagnostics_to_stderr() -> Iterator[None]:
    """The service logs and emits metrics on stdout, where Lambda collects them; here stdout is the answer."""
    handler = logger.registered_handler
    # Swapped without setStream(), which flushes the old stream first and fails if that one is closed.
    stream = handler if isinstance(handler, logging.StreamHandler) else None
    previous = stream.stream if stream else None
    if stream:
        stream.stream = sys.stderr
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if stream:
            stream.stream = previous


def _where(service: str, variable: str) -> str:
    endpoint = os.environ.get(variable) or os.environ.get("AWS_ENDPOINT_URL")
    return f"{service} at {endpoint}" if endpoint else f"{service} on AWS"


def describe_failure(error: Exception, table_name: str) -> tuple[str, str]:
    """(code, one line: what failed and what to check) for a failure of DynamoDB, SQS or the credentials."""
    cause = getattr(error, "cause", None) if isinstance(error, PynamoDBException) else error
    if isinstance(cause, NoCredentialsError):
        return "no_credentials", f"no AWS credentials: {LOCAL_ENV_HINT}; on AWS, set AWS_PROFILE or the AWS_* keys"
    if isinstance(error, PynamoDBException):
        where = f"{_where('DynamoDB', 'AWS_ENDPOINT_URL_DYNAMODB')} (table {table_name})"
        code = getattr(error, "cause_response_code", None)
        if code == "ResourceNotFoundException":
            return "table_not_found", f"{where}: no such table; check TABLE_NAME; {LOCAL_ENV_HINT}"
        if code:
            return code, f"{where} refused the request ({code}): {getattr(error, 'cause_response_message', '')}"
        return "dynamodb_unreachable", (f"{where} did not answer: check AWS_ENDPOINT_URL_DYNAMODB and that DynamoDB "
                                        f"runs; {LOCAL_ENV_HINT}; on AWS, check the region and the network")
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", "aws_error"))
        return code, f"{_where('SQS', 'AWS_ENDPOINT_URL_SQS')} refused the request ({code}): {error}"
    if isinstance(error, EndpointConnectionError):
        return "aws_unreachable", f"{error}: check the AWS_ENDPOINT_URL_* variables; {LOCAL_ENV_HINT}"
    return "aws_error", f"{error}; {LOCAL_ENV_HINT}"


def command_parser(prog: str, description: str) -> tuple[argparse.ArgumentParser, Any, argparse.ArgumentParser]:
    """A shell command's parser, its subcommands, and the parent every subcommand takes so that `--json`
    works before or after the command (SUPPRESS keeps a subcommand from resetting it)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts")
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    return parser, commands, common


def run(handler: Callable[[argparse.Namespace, Settings, datetime], Answer], args: argparse.Namespace) -> int:
    as_json = bool(getattr(args, "json", False))
    table_name = "not read yet"
    try:
        current = settings()
        table_name = current.table_name
        bind_storage(current)
        with diagnostics_to_stderr():
            code, payload, view = handler(args, current, clock.now())
    except (DomainError, MissingSetting) as error:
        render.error(as_json, error.code, str(error))
        return EXIT_ATTENTION
    except MissingSecret as error:
        render.error(as_json, "missing_secret", str(error))
        return EXIT_ATTENTION
    except (PynamoDBException, ClientError, BotoCoreError) as error:
        render.error(as_json, *describe_failure(error, table_name))
        return EXIT_ATTENTION
    if as_json:
        sys.stdout.write(render.dumps(payload) + "\n")
    else:
        Console().print(view)
    return code
