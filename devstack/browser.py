"""Headless chromium for the billing page's browser test and the demo's screenshot.

Debian's `chromium` and `chromium-driver` (installed by the Makefile), driven by selenium with the
driver's path given, so nothing is downloaded at run time. The flags keep a closed network quiet.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage")


class BrowserMissing(RuntimeError):
    pass


@contextmanager
def chromium(width: int = 1280, height: int = 2000) -> Iterator[Any]:
    """A selenium driver on a fresh profile, with the browser's console log kept for reading."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        raise BrowserMissing("chromium and chromium-driver are not installed: run `make install`")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a browser or a driver
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def show_on_phone(driver: Any, width: int = 375, height: int = 2400) -> None:
    """Emulate a phone's viewport (a window can't be made that narrow), as devtools' device mode does."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True})


def wait_until_loaded(driver: Any, url: str, timeout_s: float = 20) -> str:
    """Load the billing page afresh and wait until it says it loaded (`true`) or failed (`error`)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get("about:blank")  # so a link differing only in its fragment still loads the page anew
    driver.get(url)
    body = driver.find_element(By.TAG_NAME, "body")
    WebDriverWait(driver, timeout_s).until(lambda _: body.get_attribute("data-loaded"))
    return str(body.get_attribute("data-loaded"))
