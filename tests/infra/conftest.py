"""Shared fixtures for the infrastructure tests."""

from __future__ import annotations

from typing import Any

import pytest
from infra_support import RESOURCES_TEMPLATE, PackagedTemplates, package_everything

from devstack.template import load_template


@pytest.fixture(scope="session")
def resources_template() -> dict[str, Any]:
    return load_template(RESOURCES_TEMPLATE)


@pytest.fixture(scope="session")
def packaged_templates(tmp_path_factory: pytest.TempPathFactory) -> PackagedTemplates:
    """The real app and the fixture app packaged, and all of it linted, once per test session."""
    return package_everything(tmp_path_factory.mktemp("packaged"))
