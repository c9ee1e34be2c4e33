"""The browser of the console tests (test_console*.py): Debian's chromium, headless, driven by selenium
through Debian's chromedriver named explicitly, so selenium's driver manager never runs (no network).
A missing browser or driver fails the test with a message saying what to install; nothing skips.
Also the helpers the tests share: waiting on the page, asking a question, reading the fakes' logs."""

from __future__ import annotations

import http.client
import time
from pathlib import Path

import pytest

from harness import REPO_ROOT, RPC_TIMEOUT_S
from test_vendors import OPENAI_MODEL

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# How long a page condition may take to come true: an answer from the fakes takes well under a second.
WAIT_S = RPC_TIMEOUT_S
# A phone's viewport (CSS pixels), for the layout check.
PHONE_WIDTH, PHONE_HEIGHT = 390, 844


class Browser:
    """A headless chromium session; on a test's failure conftest saves a screenshot through it."""

    def __init__(self, artifacts: Path):
        try:
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service
        except ImportError as err:
            pytest.fail(f"selenium is not installed ({err}); run tools/setup.sh (pip install selenium)")
        for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
            if not path.is_file():
                pytest.fail(f"{path} is missing: the console tests need a real browser; apt-get install {package} "
                            f"(tools/setup.sh installs it)")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     "--disable-default-apps", "--disable-sync", "--window-size=1280,900",
                     # A microphone that plays a beep, granted without asking: the recording test.
                     "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                     # The Speak test plays what Synthesize returns without a click first.
                     "--autoplay-policy=no-user-gesture-required"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        # The TLS test's server has a certificate from the session's own CA, which chromium does not know.
        options.set_capability("acceptInsecureCerts", True)
        self.driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
        self.artifacts = artifacts
        artifacts.mkdir(parents=True, exist_ok=True)

    def failure_artifacts(self, test_name: str) -> str:
        """Saves a screenshot and returns where, with the page's console messages."""
        shot = self.artifacts / f"{test_name}.png"
        self.driver.save_screenshot(str(shot))
        messages = "\n".join(f"{e['level']}: {e['message']}" for e in self.driver.get_log("browser"))
        return f"screenshot: {shot}\nbrowser console:\n{messages or '(empty)'}"

    def quit(self) -> None:
        self.driver.quit()


@pytest.fixture(scope="module")
def browser():
    # Beside the build (ignored by git), so a failure's screenshot outlives the test folder.
    b = Browser(REPO_ROOT / ".build" / "console-screenshots")
    try:
        yield b
    finally:
        b.quit()


# --- helpers ------------------------------------------------------------------------------------


def by_testid(name: str):
    from selenium.webdriver.common.by import By
    return By.CSS_SELECTOR, f'[data-testid="{name}"]'


def wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(lambda d: condition(d))
    except Exception as err:  # TimeoutException: say what was awaited and what the page showed
        raise AssertionError(f"timed out waiting for {what}; answer state "
                             f"{answer_state(driver)!r}, page text:\n{driver.find_element('tag name', 'body').text}") from err


def answer_state(driver) -> str:
    return driver.find_element(*by_testid("answer")).get_attribute("data-state")


def open_console(driver, server) -> None:
    """Loads / and waits for the model list from ListProviders."""
    driver.get(f"http://{server.target}/")
    wait(driver, lambda d: d.find_element(*by_testid("model")).get_attribute("data-loaded") == "true",
         "the model list to load")
    driver.get_log("browser")  # start each test with an empty console log


def ask(driver, prompt: str, model: str = OPENAI_MODEL) -> None:
    from selenium.webdriver.support.ui import Select
    Select(driver.find_element(*by_testid("model"))).select_by_value(model)
    box = driver.find_element(*by_testid("prompt"))
    box.clear()
    box.send_keys(prompt)
    driver.find_element(*by_testid("send")).click()


def finished(driver, state: str = "done") -> str:
    """Waits for the answer to end in `state`; returns the answer's text."""
    wait(driver, lambda d: answer_state(d) in ("done", "error", "cancelled"), f"the answer to end ({state})")
    assert answer_state(driver) == state, (answer_state(driver), driver.find_element("tag name", "body").text)
    return driver.find_element(*by_testid("answer")).text


def fake_log_until(fake, condition, what: str) -> list[dict]:
    """The fake's log once `condition(entries)` holds; the log is written as requests arrive."""
    deadline = time.monotonic() + WAIT_S
    while True:
        entries = fake.entries()
        if condition(entries):
            return entries
        if time.monotonic() > deadline:
            raise AssertionError(f"the fake's log never showed {what}: {entries[-5:]}")
        time.sleep(0.05)


def http_get(server, path: str, headers: dict[str, str] | None = None, method: str = "GET"):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=RPC_TIMEOUT_S)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()
