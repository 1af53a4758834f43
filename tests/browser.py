"""Headless Chromium through Selenium for the browser tests: Debian's chromium and chromedriver.

The driver is always given the binaries' paths, so Selenium Manager never tries a download (none
works on these machines). ``.ci/browser`` (run by ``make test``) installs the two packages when
they are missing; without them the browser tests fail, saying what to run, rather than skip.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not Path(binary).exists():
            return f"{binary} is missing (run .ci/browser)"
    return None


def new_driver(profile: Path):  # -> selenium.webdriver.Chrome
    """A headless Chromium with a fresh profile in ``profile``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator:
    """One headless Chromium for a test module (pages are reset by navigating)."""
    reason = browser_missing()
    if reason:
        pytest.fail(f"the console's browser tests cannot run: {reason}; `make test` installs "
                    f"what they need")
    profile = Path(tempfile.mkdtemp(prefix="panorama-chromium-"))
    driver = new_driver(profile)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
