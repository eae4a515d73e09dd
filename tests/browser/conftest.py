"""Fixtures of the browser tests: the app served over HTTP in this process (so the pinned clock holds for it),
and Debian's chromium through its chromedriver (devstack/browser.py), with nothing downloaded at run time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def app_url(local_aws: Any, tokens: dict[str, str]) -> Iterator[str]:
    """The Chalice app behind chalice's own local HTTP server, on a free loopback port."""
    from chalice.config import Config
    from chalice.local import create_local_server

    import app as application

    config = Config.create(chalice_app=application.app, app_name="usage-invoicing", lambda_timeout=30,
                           lambda_memory_size=512)
    server = create_local_server(application.app, config, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, name="billing-page-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server.server_address[1]}"
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from devstack.browser import BrowserMissing, chromium

    try:
        with chromium() as driver:
            yield driver
    except BrowserMissing as error:
        pytest.fail(str(error))
