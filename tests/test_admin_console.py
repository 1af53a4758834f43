"""The web console at /admin, end to end: headless Chromium against the real gateway.

The gateway is the demo world served by ``tests.admin_world.admin_gateway`` on a loopback port;
the browser is Debian's chromium driven by Selenium (``tests/browser.py``). Every wait is an
explicit WebDriverWait on what the page shows. The tests run in file order and share one world
and one browser tab: the last one (the README story) changes the configuration and restores it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.admin_world import admin_gateway
from tests.browser import browser_fixture  # noqa: F401  (the fixture `browser`, one per module)

WAIT = 20           # seconds for anything the page does (API answers, introspection, saves)
DEMO_SOURCES = {"paris", "london", "berlin", "crm"}
KNOWN_STATES = {"ready", "breaker-open", "waiting"}

# The mapping item the picker must build for Chinook's Customer table (the YAML config's format).
CHINOOK_MAPPING = {
    "customer": {
        "table": "Customer",
        "key": "CustomerId",
        "fields": {
            "given_name": "FirstName",
            "family_name": "LastName",
            "emails": [{"column": "Email", "type": "PERSONAL", "transform": "email"}],
            "phones": [{"column": "Phone", "type": "PHONE", "transform": "phone"}],
            "addresses": [{"type": "HOME", "line1": "Address", "postcode": "PostalCode",
                           "city": "City", "country": "Country"}],
        },
    },
    "transactions": [],
    "interactions": [],
}
LUIS = "luisg@embraer.com.br"   # Chinook's customer 1, Luís Gonçalves
LUIS_QUERY = f'{{ customerByEmail(email: "{LUIS}") {{ id sourceRecords {{ source localId }} }} }}'


# --------------------------------------------------------------------------- the served world

@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The real gateway over the demo world: ``.url``, ``.admin_token``, ``.chinook_path``."""
    with admin_gateway(tmp_path_factory.mktemp("admin-world")) as opened:
        yield opened


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("console-screenshots")


# --------------------------------------------------------------------------- page helpers

class _Wait(WebDriverWait):
    """A WebDriverWait whose time-out tells what the page showed (title, banners, console)."""

    def until(self, method: Any, message: str = "") -> Any:
        def check(driver: WebDriver) -> Any:
            titles = driver.find_elements(By.ID, "page-title")
            if titles and titles[0].text == "Could not load this page":    # no use waiting on
                raise AssertionError(f"the console could not load the page:\n{page_state(driver)}")
            return method(driver)
        try:
            return super().until(check, message)
        except TimeoutException:
            raise AssertionError(f"timed out waiting; the page showed:\n{page_state(self._driver)}") from None


def page_state(driver: WebDriver) -> str:
    def texts(css: str) -> list[str]:
        return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]
    try:
        logs = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    except Exception:  # noqa: BLE001 - the log is a nicety
        logs = []
    return (f"url {driver.current_url}\ntitle {texts('#page-title')}\nbanners {texts('#alert .banner')}\n"
            f"messages {texts('#messages .message')}\nconsole {logs}")


def wait(driver: WebDriver, seconds: float = WAIT) -> WebDriverWait:
    return _Wait(driver, seconds, ignored_exceptions=(NoSuchElementException,
                                                     StaleElementReferenceException))


def ready(driver: WebDriver) -> None:
    """Wait until the console has finished drawing the current page."""
    wait(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, '#main[aria-busy="false"]')))


def sign_in(driver: WebDriver, token: str) -> None:
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "sign-in").click()


def open_page(driver: WebDriver, world: Any, route: str) -> None:
    """Load the console afresh at ``route`` (``#/...``), signing in with the admin token when
    asked. (A get of the same URL but for its fragment would not reload the page.)"""
    driver.get("about:blank")
    driver.get(f"{world.url}/admin{route}")
    ready(driver)
    if driver.find_elements(By.ID, "signin-form"):
        sign_in(driver, world.admin_token)
        wait(driver).until(lambda d: not d.find_elements(By.ID, "signin-form"))
        ready(driver)


def heading(driver: WebDriver) -> str:
    return driver.find_element(By.ID, "page-title").text


def banner_errors(driver: WebDriver) -> list[str]:
    return [b.text for b in driver.find_elements(By.CSS_SELECTOR, "#alert .banner") if b.is_displayed()]


def config_version(driver: WebDriver) -> int:
    text = wait(driver).until(lambda d: d.find_element(By.ID, "config-version").text)
    return int(text.rsplit(" ", 1)[-1])


def source_rows(driver: WebDriver) -> dict[str, Any]:
    return {row.get_attribute("data-source"): row
            for row in driver.find_elements(By.CSS_SELECTOR, "#sources-table tbody tr")}


def fill(driver: WebDriver, name: str, text: str) -> None:
    box = wait(driver).until(ec.element_to_be_clickable((By.NAME, name)))
    box.clear()
    box.send_keys(text)


def pick(driver: WebDriver, name: str, value: str) -> None:
    Select(wait(driver).until(ec.element_to_be_clickable((By.NAME, name)))).select_by_value(value)


def graphql(world: Any, query: str) -> dict[str, Any]:
    answer = httpx.post(f"{world.url}/graphql", json={"query": query}, timeout=30,
                        headers={"Authorization": f"Bearer {world.admin_token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def chinook_records(world: Any) -> list[dict[str, Any]]:
    body = graphql(world, LUIS_QUERY)
    customer = (body.get("data") or {}).get("customerByEmail")
    if not customer:
        return []
    return [r for r in customer["sourceRecords"] if r["source"] == "chinook"]


# --------------------------------------------------------------------------- tests

def test_console_loads_and_signs_in(browser: WebDriver, world: Any) -> None:
    browser.get(f"{world.url}/admin")
    ready(browser)
    browser.execute_script("sessionStorage.clear()")
    browser.get(f"{world.url}/admin")
    ready(browser)
    assert heading(browser) == "Sign in"
    assert browser.find_element(By.CSS_SELECTOR, 'label[for="token"]').text == "Admin token"

    sign_in(browser, "not-a-token")          # the gateway answers 401: back to sign-in, with why
    wait(browser).until(lambda d: banner_errors(d))
    assert heading(browser) == "Sign in"
    assert browser.execute_script("return sessionStorage.length") == 0

    sign_in(browser, world.admin_token)
    wait(browser).until(lambda d: d.find_elements(By.ID, "sources-table"))
    assert heading(browser) == "Sources"
    assert browser.current_url.endswith("#/sources")
    assert config_version(browser) >= 1
    assert not banner_errors(browser)

    browser.find_element(By.ID, "sign-out").click()
    wait(browser).until(lambda d: d.find_elements(By.ID, "signin-form"))
    assert browser.execute_script("return sessionStorage.length") == 0
    sign_in(browser, world.admin_token)
    wait(browser).until(lambda d: d.find_elements(By.ID, "sources-table"))


def test_sources_page_lists_demo_sources_with_states(browser: WebDriver, world: Any) -> None:
    open_page(browser, world, "#/sources")
    rows = wait(browser).until(lambda d: source_rows(d) if DEMO_SOURCES <= set(source_rows(d)) else None)
    for name in DEMO_SOURCES:
        state = rows[name].find_element(By.CSS_SELECTOR, ".state").text
        assert state in KNOWN_STATES or state.startswith("error"), (name, state)
        cells = rows[name].find_elements(By.TAG_NAME, "td")
        assert cells[0].text                                            # kind
        assert cells[4].text == "—" or cells[4].text.endswith(" ms")    # latency
        assert rows[name].find_element(By.LINK_TEXT, "Connector").get_attribute("href").endswith(
            f"#/connectors/{name}")

    rows["paris"].find_element(By.CSS_SELECTOR, "button[data-source]").click()
    result = wait(browser).until(lambda d: d.find_element(By.ID, "test-paris").text.startswith(
        ("OK", "Failed")) and d.find_element(By.ID, "test-paris").text)
    assert result.startswith("OK in "), result


def test_connector_editor_puts_problem_next_to_the_field(browser: WebDriver, world: Any) -> None:
    open_page(browser, world, "#/connectors/paris")
    assert heading(browser) == "Connector paris"
    path = wait(browser).until(ec.element_to_be_clickable((By.NAME, "connection.path")))
    assert path.get_attribute("value")
    fill(browser, "connection.path", "/nonexistent/panorama/no-such-shop.db")
    browser.find_element(By.ID, "validate").click()

    message = wait(browser).until(lambda d: d.find_element(By.ID, "connection.path-error").text)
    assert message
    assert path.get_attribute("aria-invalid") == "true"
    assert "connection.path-error" in path.get_attribute("aria-describedby")
    # Nothing was saved: the editor reloads with the stored path.
    open_page(browser, world, "#/connectors/paris")
    assert "no-such-shop" not in browser.find_element(By.NAME, "connection.path").get_attribute("value")


@pytest.mark.parametrize(("route", "marker", "title"), [
    ("#/sources", "sources-table", "Sources"),
    ("#/connectors/paris", "connector-form", "Connector paris"),
    ("#/mappings/paris", "mapping-editor", "Mapping of paris"),
    ("#/policies", "policy-json", "Policies"),
    ("#/history", "history-table", "History"),
])
def test_main_pages_render(browser: WebDriver, world: Any, shots: Path,
                           route: str, marker: str, title: str) -> None:
    open_page(browser, world, route)
    wait(browser).until(ec.visibility_of_element_located((By.ID, marker)))
    title_element = browser.find_element(By.ID, "page-title")
    assert title_element.is_displayed() and title_element.text == title
    assert not banner_errors(browser), banner_errors(browser)
    shot = shots / f"{route.strip('#/').replace('/', '-')}.png"
    assert browser.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 5_000, f"{shot} is only {len(data)} bytes: did the page render?"


def test_add_chinook_then_restore(browser: WebDriver, world: Any) -> None:
    """README story: add Chinook through the editor, introspection and the mapping picker in one
    change; its customers answer through GraphQL at once; restoring the previous version from
    History takes it away again."""
    assert not chinook_records(world)
    open_page(browser, world, "#/sources")
    before = config_version(browser)
    browser.find_element(By.ID, "add-source").click()
    wait(browser).until(lambda d: heading(d) == "Add a source")
    ready(browser)

    fill(browser, "name", "chinook")
    pick(browser, "kind", "sqlite")
    fill(browser, "connection.path", str(world.chinook_path))
    fill(browser, "shop", "Chinook Music")
    fill(browser, "region", "us")
    fill(browser, "defaults.country", "US")
    fill(browser, "defaults.currency", "USD")

    browser.find_element(By.ID, "introspect").click()
    customer = wait(browser).until(
        lambda d: d.find_element(By.CSS_SELECTOR, 'details[data-table="Customer"]'))
    customer.find_element(By.TAG_NAME, "summary").click()
    assert "CustomerId" in customer.text and "Email" in customer.text

    pick(browser, "customer.table", "Customer")
    for name, column in [("customer.key", "CustomerId"),
                         ("customer.fields.given_name", "FirstName"),
                         ("customer.fields.family_name", "LastName"),
                         ("customer.fields.emails[0].column", "Email"),
                         ("customer.fields.phones[0].column", "Phone"),
                         ("customer.fields.addresses[0].line1", "Address"),
                         ("customer.fields.addresses[0].postcode", "PostalCode"),
                         ("customer.fields.addresses[0].city", "City"),
                         ("customer.fields.addresses[0].country", "Country")]:
        pick(browser, name, column)
    built = json.loads(browser.find_element(By.NAME, "mapping-json").get_attribute("value"))
    assert built == CHINOOK_MAPPING
    assert json.loads(browser.find_element(By.ID, "mapping-preview").text) == CHINOOK_MAPPING

    browser.find_element(By.ID, "save").click()          # no reason yet: asked for one
    wait(browser).until(lambda d: d.find_element(By.ID, "reason-error").text)
    fill(browser, "reason", "add the Chinook music shop")
    browser.find_element(By.ID, "save").click()
    wait(browser).until(lambda d: "chinook" in source_rows(d))
    assert not banner_errors(browser), banner_errors(browser)
    added = config_version(browser)
    assert added == before + 1

    records = chinook_records(world)                     # live, without a restart
    assert records and records[0]["localId"] == "1", records

    # History: the new version first, its diff adds chinook; restore the one before it.
    browser.find_element(By.LINK_TEXT, "History").click()
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#history-table tbody tr"))
    first = browser.find_element(By.CSS_SELECTOR, "#history-table tbody tr")
    assert first.get_attribute("data-version") == str(added)
    assert "add the Chinook music shop" in first.text
    first.find_element(By.LINK_TEXT, str(added)).click()
    wait(browser).until(lambda d: heading(d) == f"Version {added}")
    added_lines = wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#diff .add"))
    assert any("chinook" in line.text.lower() for line in added_lines)

    open_page(browser, world, f"#/history/{before}")
    assert heading(browser) == f"Version {before}"
    fill(browser, "reason", "take Chinook out again")
    browser.find_element(By.ID, "restore").click()
    wait(browser).until(lambda d: d.current_url.endswith("#/history")
                        and d.find_elements(By.CSS_SELECTOR, "#history-table tbody tr"))
    assert not banner_errors(browser), banner_errors(browser)
    assert config_version(browser) == added + 1

    assert not chinook_records(world)
    open_page(browser, world, "#/sources")
    rows = wait(browser).until(lambda d: source_rows(d) or None)
    assert "chinook" not in rows and DEMO_SOURCES <= set(rows)


def test_secret_left_empty_is_kept(browser: WebDriver, world: Any) -> None:
    """The CRM token is a secret: shown empty, saved untouched, the server keeps it."""
    headers = {"Authorization": f"Bearer {world.admin_token}"}
    before = httpx.get(f"{world.url}/admin/api/connectors/crm", headers=headers, timeout=30).json()
    open_page(browser, world, "#/connectors/crm")
    token = wait(browser).until(ec.element_to_be_clickable((By.NAME, "connection.token")))
    assert token.get_attribute("type") == "password" and token.get_attribute("value") == ""
    assert "leave empty to keep" in token.get_attribute("placeholder")
    fill(browser, "reason", "save the CRM connector as it is")
    browser.find_element(By.ID, "save").click()
    wait(browser).until(lambda d: "crm" in source_rows(d))
    assert not banner_errors(browser), banner_errors(browser)
    after = httpx.get(f"{world.url}/admin/api/connectors/crm", headers=headers, timeout=30).json()
    assert after["version"] == before["version"] + 1
    assert after["item"]["connection"]["token"] == before["item"]["connection"]["token"]


def test_stale_version_is_reported_as_a_conflict(browser: WebDriver, world: Any) -> None:
    """Someone else saves while the editor is open: Save answers 409 and offers a reload."""
    open_page(browser, world, "#/connectors/paris")
    shown = config_version(browser)
    item = httpx.get(f"{world.url}/admin/api/connectors/paris", timeout=30,
                     headers={"Authorization": f"Bearer {world.admin_token}"}).json()["item"]
    answer = httpx.put(f"{world.url}/admin/api/connectors/paris", timeout=30,
                       json={"item": item, "reason": "someone else"},
                       headers={"Authorization": f"Bearer {world.admin_token}", "If-Match": f'"{shown}"'})
    assert answer.status_code == 200, answer.text

    fill(browser, "reason", "my own change")
    browser.find_element(By.ID, "save").click()
    message = wait(browser).until(lambda d: d.find_element(By.ID, "conflict-message").text)
    assert f"now version {shown + 1}" in message
    browser.find_element(By.ID, "reload").click()
    wait(browser).until(lambda d: config_version(d) == shown + 1
                        and not d.find_elements(By.ID, "conflict-message"))

