"""Fixtures of the browser tests: the app served over HTTP in this process (so the pinned clock holds for it),
and Debian's chromium driven through its chromedriver, with nothing downloaded at run time."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS


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
    """Headless chromium with a fresh profile, its console log kept for the tests to read."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail("chromium and chromium-driver are not installed: run `make install`")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a browser or driver
    profile = tempfile.mkdtemp(prefix="billing-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, "--window-size=1280,2000", f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
