"""Settings from the environment, read in one place.

Production sets TABLE_NAME, SYNC_QUEUE_URL and the SSM parameter names; the local stack
and tests also set endpoint overrides. Secrets never come from the repository.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from .domain.notifications import DISABLE_AFTER, RETRY_SCHEDULE

LOCAL_STAGE = "local"  # the local stack; every other stage is deployed somewhere


class MissingSecret(RuntimeError):
    """A secret the process cannot run safely without."""


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    table_name: str
    dynamodb_endpoint: str | None
    sync_queue_url: str
    sync_dlq_url: str
    late_usage_window: timedelta
    future_tolerance: timedelta
    finalize_grace: timedelta
    sync_stale_after: timedelta
    token_pepper: str
    stripe_api_key: str
    stripe_api_base: str | None
    stripe_webhook_secret: str
    stripe_max_network_retries: int
    log_level: str
    canary_org: str
    stripe_canary_api_key: str
    delivery_queue_url: str = ""
    delivery_dlq_url: str = ""
    webhook_retry_schedule: tuple[timedelta, ...] = RETRY_SCHEDULE
    webhook_disable_after: timedelta = DISABLE_AFTER

    @property
    def local_stage(self) -> bool:
        """Only the local stack may send webhooks over plain http or to loopback and private addresses."""
        return self.stage == LOCAL_STAGE

    @property
    def dedup_retention(self) -> timedelta:
        # A duplicate can only be accepted while its timestamp is inside the late window,
        # so the dedup record must outlive the window; one extra day covers TTL skew.
        return self.late_usage_window + timedelta(days=1)


def _secret(value_var: str, param_var: str, optional: bool = False) -> str:
    """A secret from the environment, else from the SSM parameter it names ("" for a missing optional one)."""
    value = _env(value_var)
    if value or not _env(param_var):
        return value
    import boto3  # only production reaches this path

    ssm = boto3.client("ssm")
    try:
        return str(ssm.get_parameter(Name=_env(param_var), WithDecryption=True)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        if optional:
            return ""
        raise


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings(
        stage=_env("STAGE", "dev"),
        region=_env("AWS_DEFAULT_REGION", _env("AWS_REGION", "us-east-1")),
        table_name=_env("TABLE_NAME", "usage-invoicing-dev"),
        dynamodb_endpoint=_env("AWS_ENDPOINT_URL_DYNAMODB") or None,
        sync_queue_url=_env("SYNC_QUEUE_URL"),
        sync_dlq_url=_env("SYNC_DLQ_URL"),
        late_usage_window=timedelta(days=int(_env("LATE_USAGE_WINDOW_DAYS", "35"))),
        future_tolerance=timedelta(minutes=5),
        finalize_grace=timedelta(seconds=int(_env("FINALIZE_GRACE_SECONDS", "3600"))),
        sync_stale_after=timedelta(seconds=int(_env("SYNC_STALE_AFTER_SECONDS", "900"))),
        token_pepper=_secret("TOKEN_PEPPER", "TOKEN_PEPPER_PARAM"),
        stripe_api_key=_secret("STRIPE_API_KEY", "STRIPE_API_KEY_PARAM"),
        stripe_api_base=_env("STRIPE_API_BASE") or None,
        stripe_webhook_secret=_secret("STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET_PARAM"),
        stripe_max_network_retries=int(_env("STRIPE_MAX_NETWORK_RETRIES", "2")),
        log_level=_env("LOG_LEVEL", "INFO"),
        canary_org=_env("CANARY_ORG"),
        stripe_canary_api_key=_secret("STRIPE_CANARY_API_KEY", "STRIPE_CANARY_API_KEY_PARAM", optional=True),
        delivery_queue_url=_env("DELIVERY_QUEUE_URL"),
        delivery_dlq_url=_env("DELIVERY_DLQ_URL"),
        webhook_retry_schedule=_schedule(_env("WEBHOOK_RETRY_SCHEDULE_SECONDS")) or RETRY_SCHEDULE,
        webhook_disable_after=timedelta(seconds=int(_env("WEBHOOK_DISABLE_AFTER_SECONDS",
                                                         str(int(DISABLE_AFTER.total_seconds()))))),
    )


def require_pepper(current: Settings) -> str:
    """The token pepper; outside the local stage there is no safe default, so refuse to go on without one.

    Without it a token's stored HMAC could be tested against guesses by anyone who can read the table.
    """
    if current.token_pepper or current.stage == LOCAL_STAGE:
        return current.token_pepper
    raise MissingSecret(
        f"no token pepper in stage {current.stage!r}: set TOKEN_PEPPER, or TOKEN_PEPPER_PARAM to the SSM "
        "SecureString that holds it (only the local stage may run without one)")


def _schedule(text: str) -> tuple[timedelta, ...]:
    """`30,120,600`: seconds to wait after each failed delivery (tests and the local stack shorten it)."""
    return tuple(timedelta(seconds=int(part)) for part in text.split(",") if part.strip())


def reload_settings() -> Settings:
    """Re-read the environment (tests and the local stack change it between runs)."""
    settings.cache_clear()
    return settings()
