"""Environment overrides: the test session's local settings, and changes for one test that are undone after it.

The app reads its settings from the environment once (`chalicelib.config.settings`), so every change here
re-reads them, and so does every undo.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

import pytest

# What the whole test session runs with, besides the endpoints of its servers.
LOCAL_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "TOKEN_PEPPER": "test-pepper",
    "STRIPE_API_KEY": "sk_test_local",
    "STRIPE_WEBHOOK_SECRET": "whsec_test_local",
}


class EnvironmentOverrides:
    """Set variables (None unsets one); `restore()` puts back what each was before its first change."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def __call__(self, **values: str | None) -> None:
        self.apply(values)

    def apply(self, values: Mapping[str, str | None]) -> None:
        for name, value in values.items():
            self._saved.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _reload_settings()

    def restore(self) -> None:
        saved, self._saved = self._saved, {}
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _reload_settings()


def _reload_settings() -> None:
    from chalicelib.config import reload_settings

    reload_settings()


@pytest.fixture
def set_env() -> Iterator[EnvironmentOverrides]:
    """Change environment variables for one test: `set_env(NAME="value")`; undone after it."""
    overrides = EnvironmentOverrides()
    yield overrides
    overrides.restore()
