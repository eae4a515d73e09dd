"""Shared fixtures for the infrastructure tests."""

from __future__ import annotations

from typing import Any

import pytest
from infra_support import RESOURCES_TEMPLATE

from devstack.resources import load_template


@pytest.fixture(scope="session")
def resources_template() -> dict[str, Any]:
    return load_template(RESOURCES_TEMPLATE)
