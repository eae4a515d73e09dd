"""The application's environment variables for the local stack, in one place.

``local_environment(...)`` builds them; the stack applies them to ``os.environ``
(tests), passes them to the processes it starts, and writes them as shell exports
to ``.devstack/run/env`` so a shell can ``source`` them::

    source .devstack/run/env
    aws --endpoint-url "$AWS_ENDPOINT_URL_SQS" sqs receive-message --queue-url "$SYNC_DLQ_URL"

Production sets none of the endpoint variables; boto3 then talks to AWS.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

__all__ = [
    "DEFAULT_ADMIN_TOKEN",
    "DEFAULT_REGION",
    "DEFAULT_USAGE_TOKEN",
    "PROJECT_ROOT",
    "LOCAL_STAGE",
    "LOCAL_STRIPE_API_KEY",
    "LOCAL_TOKEN_PEPPER",
    "LOCAL_WEBHOOK_SECRET",
    "apply_environment",
    "chalice_config_environment",
    "local_environment",
    "merge_chalice_environment",
    "resource_environment",
    "restore_environment",
    "shell_exports",
    "write_env_file",
]

from devstack.dev_tokens import DEFAULT_ADMIN_TOKEN, DEFAULT_USAGE_TOKEN
from devstack.local_aws import DEFAULT_REGION

if TYPE_CHECKING:
    from devstack.resources import LocalResources

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_STAGE = "local"
LOCAL_STRIPE_API_KEY = "sk_test_local"
LOCAL_WEBHOOK_SECRET = "whsec_local_devstack_webhook_secret"
LOCAL_TOKEN_PEPPER = "local-pepper"


def local_environment(
    *,
    dynamodb_endpoint: str,
    sqs_endpoint: str,
    stripe_api_base: str,
    resources: LocalResources,
    region: str = DEFAULT_REGION,
    webhook_secret: str = LOCAL_WEBHOOK_SECRET,
) -> dict[str, str]:
    """Every variable the app, the event runner and the CLI need to use the local stack.

    The development tokens are ``$DEV_ADMIN_TOKEN`` / ``$DEV_USAGE_TOKEN`` if set, else
    ``dev-admin-token`` / ``dev-usage-token``.
    """
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        **resource_environment(dynamodb_endpoint, sqs_endpoint, resources),
        "STRIPE_API_BASE": stripe_api_base,
        "STRIPE_API_KEY": LOCAL_STRIPE_API_KEY,
        "STRIPE_WEBHOOK_SECRET": webhook_secret,
        "TOKEN_PEPPER": LOCAL_TOKEN_PEPPER,
        "DEV_ADMIN_TOKEN": os.environ.get("DEV_ADMIN_TOKEN") or DEFAULT_ADMIN_TOKEN,
        "DEV_USAGE_TOKEN": os.environ.get("DEV_USAGE_TOKEN") or DEFAULT_USAGE_TOKEN,
        "STAGE": LOCAL_STAGE,
    }
    return env


def resource_environment(dynamodb_endpoint: str, sqs_endpoint: str, resources: LocalResources) -> dict[str, str]:
    """Where the app finds its table, stream and queues on the local servers."""
    return {
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        # DynamoDB Local serves the Streams API on the same endpoint.
        "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": dynamodb_endpoint,
        "AWS_ENDPOINT_URL_SQS": sqs_endpoint,
        "TABLE_NAME": resources.table_name,
        "TABLE_STREAM_ARN": resources.stream_arn,
        "SYNC_QUEUE_URL": resources.queue_url,
        "SYNC_DLQ_URL": resources.dlq_url,
        "DELIVERY_QUEUE_URL": resources.delivery_queue_url,
        "DELIVERY_DLQ_URL": resources.delivery_dlq_url,
    }


def chalice_config_environment(stage: str, project_root: Path = PROJECT_ROOT) -> dict[str, str]:
    """What ``chalice local --stage <stage>`` writes over the process environment.

    chalice 1.34 (cli/factory.py ``load_chalice_app``) updates ``os.environ`` with
    the merged ``environment_variables``: top level, then ``stages.<stage>``. A stage
    without its own section (``local``) gets only the top-level ones.
    """
    path = project_root / ".chalice" / "config.json"
    if not path.exists():
        return {}
    config = json.loads(path.read_text())
    merged = dict(config.get("environment_variables") or {})
    merged.update(((config.get("stages") or {}).get(stage) or {}).get("environment_variables") or {})
    return {name: str(value) for name, value in merged.items()}


def merge_chalice_environment(env: dict[str, str], stage: str) -> list[str]:
    """Make `env` agree with what `chalice local --stage <stage>` will force on the API; returns a note for
    each value it replaced, so the API, the event runner and ``.devstack/run/env`` see the same settings."""
    notes = []
    forced = chalice_config_environment(stage)
    for name, value in sorted(forced.items()):
        if name in env and env[name] != value:
            notes.append(f"{name}={value!r} from .chalice/config.json (stage {stage}) replaces {env[name]!r}")
    env.update(forced)
    return notes


def shell_exports(env: Mapping[str, str]) -> str:
    """``export NAME='value'`` lines, safe to ``source`` from sh/bash/zsh."""
    return "".join(f"export {name}={shlex.quote(str(value))}\n" for name, value in sorted(env.items()))


def write_env_file(path: os.PathLike[str] | str, env: Mapping[str, str]) -> Path:
    """Write ``env`` as shell exports to ``path`` (atomically, mode 0600)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write("# Local stack environment: source this file.\n")
        handle.write(shell_exports(env))
    os.replace(temporary, target)
    return target


def apply_environment(env: Mapping[str, str]) -> dict[str, str]:
    """Set ``env`` in ``os.environ``; returns the previous environment for ``restore_environment``."""
    saved = dict(os.environ)
    os.environ.update({key: str(value) for key, value in env.items()})
    return saved


def restore_environment(saved: Mapping[str, str]) -> None:
    """Put ``os.environ`` back exactly as ``saved``."""
    for key in list(os.environ):
        if key not in saved:
            del os.environ[key]
    os.environ.update(saved)
