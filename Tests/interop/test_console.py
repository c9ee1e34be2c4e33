"""The web console (GET /) in a real browser: Debian's chromium, headless, driven by selenium through
Debian's chromedriver named explicitly (selenium's driver manager never runs: no network). The server
is a real prism-server whose vendor plugins talk to the fake vendors of tools/fakes/, so models list
and answer. What a user sees is what is asserted: the model list, an answer streaming in, a file
reaching the vendor, errors shown, nothing loaded from anywhere but the server, a phone-width layout.
A missing browser or driver fails the module with a message saying what to install; nothing skips."""

from __future__ import annotations

import base64
import http.client
import json
import time
from pathlib import Path

import pytest

from conftest import API_KEY
from harness import REPO_ROOT, RPC_TIMEOUT_S
from test_vendor_tls import vendor_env
from test_vendors import ANTHROPIC_MODEL, GEMINI_MODEL, OPENAI_MODEL, fakes, png, vendor_server  # noqa: F401 (fixtures)

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


# --- the tests ----------------------------------------------------------------------------------


def test_console_files_have_types_validators_and_a_strict_policy(vendor_server):
    status, headers, body = http_get(vendor_server, "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8", (status, headers)
    for testid in ("prompt", "send", "answer", "model", "file"):
        assert f'data-testid="{testid}"' in body.decode(), testid
    csp = {d.split()[0]: d.split()[1:] for d in headers["content-security-policy"].split("; ")}
    assert csp["default-src"] == ["'none'"] and csp["script-src"] == ["'self'"] and csp["connect-src"] == ["'self'"], csp
    assert csp["style-src"] == ["'self'"] and csp["frame-ancestors"] == ["'none'"], csp
    assert headers["cache-control"] == "no-cache" and headers["x-content-type-options"] == "nosniff", headers
    etag = headers["etag"]
    assert etag.startswith('"') and etag.endswith('"'), etag

    # Revalidation: the same tag gets 304 without a body; another tag, or none, the page.
    status, again, body304 = http_get(vendor_server, "/", {"if-none-match": etag})
    assert status == 304 and body304 == b"" and again["etag"] == etag, (status, again)
    assert http_get(vendor_server, "/", {"if-none-match": f'"other", W/{etag}'})[0] == 304
    assert http_get(vendor_server, "/", {"if-none-match": '"other"'})[0] == 200

    status, headers, script = http_get(vendor_server, "/console/app.js")
    assert status == 200 and headers["content-type"] == "text/javascript; charset=utf-8", headers
    assert b"serverStream" in script and headers["etag"] != etag
    status, headers, css = http_get(vendor_server, "/console/console.css", method="HEAD")
    assert status == 200 and headers["content-type"] == "text/css; charset=utf-8" and css == b"", (status, headers)
    assert int(headers["content-length"]) > 0
    assert http_get(vendor_server, "/console/missing.js")[0] == 404


def test_model_list_shows_the_providers_models(browser, vendor_server):
    driver = browser.driver
    open_console(driver, vendor_server)
    options = [o.get_attribute("value") for o in driver.find_elements("css selector", '[data-testid="model"] option')]
    for model in (OPENAI_MODEL, ANTHROPIC_MODEL, GEMINI_MODEL):
        assert model in options, f"{model} not offered; the list has {options}"
    assert options[0] == "", "the first choice leaves the model to the server"
    # Only generate-capable models are offered (whisper-1 transcribes); the matrix shows every model.
    assert "openai/whisper-1" not in options, options
    matrix = driver.find_element(*by_testid("matrix")).text
    assert "openai/whisper-1" in matrix and GEMINI_MODEL in matrix and "$2.50 · $10.00" in matrix, matrix


def test_prompt_streams_an_answer_with_route_and_cost(browser, vendor_server, fakes):
    driver = browser.driver
    open_console(driver, vendor_server)
    # Every change to the answer, as the page makes it: an answer shown only at the end would be one.
    driver.execute_script("""
        window.seen = [];
        new MutationObserver(() => window.seen.push(arguments[0].textContent))
            .observe(arguments[0], {childList: true, characterData: true, subtree: true});
    """, driver.find_element(*by_testid("answer")))
    prompt = "hello from the console"
    ask(driver, prompt)
    assert finished(driver) == f"You said: {prompt}"
    seen = [s for s in driver.execute_script("return window.seen") if s]
    assert len(seen) >= 2 and seen[0] != seen[-1], f"the answer arrived in one piece: {seen}"

    routed = driver.find_element(*by_testid("routed")).text
    assert OPENAI_MODEL in routed and "no adaptation" in routed, routed
    usage = driver.find_element(*by_testid("usage")).text
    # 16 tokens × $2.50 + 7 × $10 per million (the fake's usage, gpt-4o's prices).
    assert "16 tokens in · 7 out" in usage and "$0.000110" in usage and "stopped: end turn" in usage, usage
    assert not driver.find_element(*by_testid("error")).is_displayed()
    sent = fakes["openai"].requests(prompt)
    assert len(sent) == 1 and sent[0]["body"]["model"] == "gpt-4o", sent


def test_a_second_prompt_carries_the_conversation_and_new_chat_forgets_it(browser, vendor_server, fakes):
    driver = browser.driver
    open_console(driver, vendor_server)
    first, second, third = "my name is Ada", "what is my name", "a fresh start"
    ask(driver, first)
    assert finished(driver) == f"You said: {first}"
    assert driver.find_element(*by_testid("prompt")).get_attribute("value") == "", "the prompt is cleared for the next turn"
    ask(driver, second)
    assert finished(driver) == f"You said: {second}"
    assert driver.find_element("id", "question").text == f"You: {second}", "the answer panel says what it answers"
    transcript = driver.find_element(*by_testid("transcript")).text
    assert transcript == f"You: {first}\n{OPENAI_MODEL}: You said: {first}", transcript
    sent = fakes["openai"].requests(second)[0]["body"]["messages"]
    assert sent == [{"role": "user", "content": [{"type": "text", "text": first}]},
                    {"role": "assistant", "content": f"You said: {first}"},
                    {"role": "user", "content": [{"type": "text", "text": second}]}], sent

    driver.find_element("id", "new-chat").click()
    assert driver.find_element(*by_testid("transcript")).text == ""
    ask(driver, third)
    finished(driver)
    assert [m["role"] for m in fakes["openai"].requests(third)[0]["body"]["messages"]] == ["user"]


def extract_in_page(driver, text: str, schema: str | None = None) -> None:
    from selenium.webdriver.support.ui import Select
    Select(driver.find_element(*by_testid("model"))).select_by_value(OPENAI_MODEL)
    box = driver.find_element(*by_testid("prompt"))
    box.clear()
    box.send_keys(text)
    if schema is not None:
        editor = driver.find_element(*by_testid("schema"))
        editor.clear()
        editor.send_keys(schema)
    driver.find_element(*by_testid("extract")).click()
    wait(driver, lambda d: d.find_element(*by_testid("extract-result")).get_attribute("data-state") in ("done", "error"),
         "the extraction to end")


def test_extract_returns_json_valid_against_the_schema_with_its_repairs(browser, vendor_server, fakes):
    driver = browser.driver
    open_console(driver, vendor_server)
    # The fake answers the script's answer-N for the N-th generation: the first breaks the sample
    # schema (a negative total), so the server asks again and returns the second.
    text = ('invoice A-17 for 42.50 from the console\n'
            'answer-1: {"invoice_number": "A-17", "total": -1}\n'
            'answer-2: {"invoice_number": "A-17", "total": 42.5}')
    extract_in_page(driver, text)
    result = driver.find_element(*by_testid("extract-result"))
    assert result.get_attribute("data-state") == "done", driver.find_element(*by_testid("extract-error")).text
    assert json.loads(result.text) == {"invoice_number": "A-17", "total": 42.5}, result.text
    assert OPENAI_MODEL in driver.find_element("id", "extract-routed").text
    assert "2 generations" in driver.find_element("id", "extract-usage").text
    calls = [e for e in fakes["openai"].entries() if "path" in e and "invoice A-17 for 42.50 from the console" in json.dumps(e["body"])]
    assert len(calls) == 2, f"one repair round at the vendor: {calls}"

    # A schema that is not JSON Schema is refused by the server, naming the problem.
    extract_in_page(driver, "anything", schema='{"type": 12}')
    error = driver.find_element(*by_testid("extract-error"))
    assert error.is_displayed() and "Extract failed: invalid_argument" in error.text, error.text


def test_the_server_panel_shows_readiness_and_the_counters_of_metrics(browser, vendor_server):
    from prometheus_client.parser import text_string_to_metric_families
    driver = browser.driver
    open_console(driver, vendor_server)
    table = driver.find_element(*by_testid("usage-table"))
    wait(driver, lambda d: table.get_attribute("data-updated"), "the server panel to load")
    assert driver.find_element(*by_testid("readiness")).text == "ready"
    before = int(table.get_attribute("data-updated"))
    ask(driver, "count me in the metrics")
    finished(driver)
    wait(driver, lambda d: int(table.get_attribute("data-updated")) > before, "the panel to refresh after the answer")

    # The panel says what /metrics says, read now by Prometheus' own parser.
    samples = [s for f in text_string_to_metric_families(http_get(vendor_server, "/metrics")[2].decode()) for s in f.samples]
    def metric(name, **labels):
        return next(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))
    row = [r.text for r in table.find_elements("xpath", f".//tr[td[1][text()='{OPENAI_MODEL}']]/td")]
    assert row == [OPENAI_MODEL, str(int(metric("prism_tokens_total", model=OPENAI_MODEL, direction="input"))),
                   str(int(metric("prism_tokens_total", model=OPENAI_MODEL, direction="output"))),
                   f"${metric('prism_cost_usd_total', model=OPENAI_MODEL):.6f}"], (row, [s for s in samples if "gpt-4o" in str(s.labels)])
    calls = driver.find_element(*by_testid("calls-table"))
    generate_ok = [r.text for r in calls.find_elements("xpath", ".//tr[td[1][text()='prism.v1.Prism/Generate'] and td[2][text()='OK']]/td")]
    assert generate_ok == ["prism.v1.Prism/Generate", "OK", str(int(metric(
        "grpc_server_handled_total", grpc_method="Generate", grpc_code="OK")))], generate_ok


def test_stop_cuts_a_streaming_answer_and_the_vendor_call(browser, vendor_server, fakes):
    driver = browser.driver
    open_console(driver, vendor_server)
    prompt = "slow answer for the console"  # the fake sends a tick every 50 ms for 10 s
    ask(driver, prompt)
    wait(driver, lambda d: answer_state(d) == "streaming" and "tick 3" in d.find_element(*by_testid("answer")).text,
         "ticks to stream in while the answer is still open")
    driver.find_element("id", "stop").click()
    text = finished(driver, "cancelled")
    assert text.startswith("tick 0 tick 1 tick 2 tick 3") and "tick 199" not in text, text
    assert "Stopped" in driver.find_element(*by_testid("error")).text
    fake_log_until(fakes["openai"], lambda es: any(e.get("event") == "disconnected" and e.get("text") == prompt for e in es),
                   "the vendor call cut when the browser stopped")


def test_attached_png_reaches_the_vendor(browser, vendor_server, fakes, tmp_path: Path):
    driver = browser.driver
    open_console(driver, vendor_server)
    picture = tmp_path / "console-picture.png"
    picture.write_bytes(png(64, 48))
    driver.find_element(*by_testid("file")).send_keys(str(picture))
    wait(driver, lambda d: "console-picture.png (image/png" in d.find_element("id", "attachments").text,
         "the attachment to be listed")
    prompt = "what is in this console picture"
    ask(driver, prompt)
    assert finished(driver) == f"You said: {prompt} [image 64x48 image/png]"
    sent = fakes["openai"].requests(prompt)
    assert len(sent) == 1, sent
    images = sent[0]["body"]["images"]
    assert [(i["mime"], i["width"], i["height"]) for i in images] == [("image/png", 64, 48)], images


def test_a_dropped_file_is_attached_and_an_adaptation_is_shown(browser, vendor_server, fakes):
    driver = browser.driver
    open_console(driver, vendor_server)
    # What a drop from the desktop delivers: a drop event whose DataTransfer holds the file.
    driver.execute_script("""
        const bytes = Uint8Array.from(atob(arguments[1]), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'dropped.png', {type: 'image/png'}));
        for (const type of ['dragover', 'drop']) {
            arguments[0].dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
        }
    """, driver.find_element("id", "drop"), base64.b64encode(png(3000, 20)).decode())
    wait(driver, lambda d: "dropped.png (image/png" in d.find_element("id", "attachments").text, "the dropped file to be listed")
    # gpt-4o's long edge limit is under 3000 px: the gateway downscales, and the routed line says so.
    prompt = "what is this dropped strip"
    ask(driver, prompt)
    answer = finished(driver)
    routed = driver.find_element(*by_testid("routed")).text
    assert "adapted: " in routed and "no adaptation" not in routed, routed
    images = fakes["openai"].requests(prompt)[0]["body"]["images"]
    assert len(images) == 1 and images[0]["width"] < 3000, images
    assert answer == f"You said: {prompt} [image {images[0]['width']}x{images[0]['height']} {images[0]['mime']}]", answer


def test_a_recording_from_the_microphone_reaches_the_vendor_as_audio(browser, vendor_server, fakes):
    driver = browser.driver
    open_console(driver, vendor_server)
    record = driver.find_element(*by_testid("record"))
    record.click()
    wait(driver, lambda d: (s := d.find_element("id", "record-status").text).startswith("recording… ")
         and float(s.split()[1]) >= 1.0, "a second of recording")
    assert record.get_attribute("aria-pressed") == "true"
    record.click()
    wait(driver, lambda d: ".webm (audio/webm" in d.find_element("id", "attachments").text, "the recording to be attached")
    assert record.get_attribute("aria-pressed") == "false"
    assert driver.find_element(*by_testid("prompt")).get_attribute("value") == "Transcribe this recording."
    # gpt-4o-audio-preview takes audio: the gateway decodes the WebM/Opus and sends WAV.
    prompt = "recorded from the console"
    ask(driver, prompt, model="openai/gpt-4o-audio-preview")
    answer = finished(driver)
    sent = fakes["openai"].requests(prompt)
    assert len(sent) == 1, sent
    audio = sent[0]["body"]["audio"]
    assert len(audio) == 1 and audio[0]["format"] == "wav" and audio[0]["riff"], audio
    assert audio[0]["wav"] and audio[0]["wav"][0] >= 0.9, f"a second of audio or more: {audio}"
    assert answer.startswith(f"You said: {prompt} [audio wav "), answer


def test_speak_plays_the_answer_through_synthesize(browser, vendor_server):
    driver = browser.driver
    open_console(driver, vendor_server)
    speak = driver.find_element("id", "speak")
    assert not speak.is_enabled(), "nothing to speak before an answer"
    ask(driver, "say something")
    finished(driver)
    speak.click()
    wait(driver, lambda d: d.execute_script(
        "const a = document.getElementById('speech'); return !a.hidden && a.readyState >= 1 && a.duration > 0"),
        "the spoken answer to be ready to play")
    assert not driver.find_element(*by_testid("error")).is_displayed(), driver.find_element(*by_testid("error")).text


def test_a_vendor_error_is_shown(browser, vendor_server, fakes):
    driver = browser.driver
    open_console(driver, vendor_server)
    prompt = "status-400 from the console"
    ask(driver, prompt)
    finished(driver, "error")
    error = driver.find_element(*by_testid("error"))
    assert error.is_displayed() and error.get_attribute("role") == "alert"
    assert "The request failed: invalid_argument" in error.text and "fake failure 400" in error.text, error.text
    assert fakes["openai"].requests(prompt), "the request reached the vendor"


def test_an_unknown_model_is_refused_with_the_servers_reason(browser, vendor_server):
    driver = browser.driver
    open_console(driver, vendor_server)
    # A model the list no longer has (a stale page, say): the server's refusal is what the user reads.
    driver.execute_script("""
        const option = document.createElement('option');
        option.value = option.textContent = 'nowhere/no-such-model';
        arguments[0].append(option);
    """, driver.find_element(*by_testid("model")))
    ask(driver, "hello", model="nowhere/no-such-model")
    finished(driver, "error")
    error = driver.find_element(*by_testid("error")).text
    assert "The request failed:" in error and "nowhere" in error, error


def test_over_tls_the_browser_speaks_http2_and_stop_resets_the_stream(browser, servers, fakes):
    # What a deployment with a certificate serves: ALPN picks h2, so the page, ListProviders and
    # the Generate stream all travel over HTTP/2, and Stop becomes an RST_STREAM.
    urls = {name: f"http://127.0.0.1:{fake.port}" for name, fake in fakes.items()}
    server = servers.start("console-tls", [], "tls", env=vendor_env(urls))
    try:
        driver = browser.driver
        driver.get_log("performance")
        driver.get(f"https://{server.target}/")
        wait(driver, lambda d: d.find_element(*by_testid("model")).get_attribute("data-loaded") == "true",
             "the model list over TLS")
        prompt = "hello over http2"
        ask(driver, prompt)
        assert finished(driver) == f"You said: {prompt}"
        protocols = {}
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.responseReceived":
                response = message["params"]["response"]
                protocols[response["url"]] = response.get("protocol")
        origin = f"https://{server.target}/"
        for path in ("", "console/app.js", "prism.v1.Prism/ListProviders", "prism.v1.Prism/Generate"):
            assert protocols.get(origin + path) == "h2", f"{path or '/'} over {protocols.get(origin + path)}: {protocols}"

        slow = "slow answer over http2"
        ask(driver, slow)
        wait(driver, lambda d: answer_state(d) == "streaming" and "tick 2" in d.find_element(*by_testid("answer")).text,
             "ticks over HTTP/2")
        driver.find_element("id", "stop").click()
        finished(driver, "cancelled")
        fake_log_until(fakes["openai"], lambda es: any(e.get("event") == "disconnected" and e.get("text") == slow for e in es),
                       "the vendor call cut when the browser reset the stream")
    finally:
        server.stop()


def test_a_server_that_wants_an_api_key_gets_the_one_typed_in(browser, servers):
    from selenium.webdriver.common.keys import Keys
    server = servers.get("auth", "h2c")
    driver = browser.driver
    driver.get(f"http://{server.target}/")
    wait(driver, lambda d: "unauthenticated" in d.find_element("id", "model-status").text, "the refusal to show")
    driver.find_element("css selector", ".key summary").click()
    driver.find_element("id", "api-key").send_keys(API_KEY, Keys.ENTER)
    wait(driver, lambda d: d.find_element(*by_testid("model")).get_attribute("data-loaded") == "true",
         "the model list, with the key")
    ask(driver, "hello with a key", model="local/mediainfo")
    assert finished(driver).strip(), "an answer from local/mediainfo"


def test_the_page_loads_nothing_from_elsewhere_and_the_policy_blocks_it(browser, vendor_server, tmp_path: Path):
    driver = browser.driver
    driver.get_log("performance")  # drop earlier tests' entries
    open_console(driver, vendor_server)
    picture = tmp_path / "policy.png"
    picture.write_bytes(png(8, 8))
    driver.find_element(*by_testid("file")).send_keys(str(picture))
    ask(driver, "policy check")
    finished(driver)

    origin = f"http://{vendor_server.target}/"
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    assert f"{origin}console/app.js" in urls and f"{origin}prism.v1.Prism/Generate" in urls, urls
    foreign = [u for u in urls if not (u.startswith(origin) or u.startswith("blob:") or u.startswith("data:"))]
    assert not foreign, f"the console loaded from elsewhere: {foreign}"
    problems = [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert not problems, f"the page logged errors: {problems}"

    # The policy is enforced, not only sent: an image from another origin is refused by the browser.
    violation = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        document.addEventListener('securitypolicyviolation', (e) => done(e.violatedDirective + ' ' + e.blockedURI));
        const img = document.createElement('img');
        img.src = 'http://127.0.0.2:9/elsewhere.png';
        document.body.append(img);
    """)
    assert violation.startswith("img-src") and "127.0.0.2" in violation, violation


def test_phone_width_layout_fits_without_sideways_scrolling(browser, vendor_server):
    driver = browser.driver
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": PHONE_WIDTH, "height": PHONE_HEIGHT, "deviceScaleFactor": 2, "mobile": True})
    try:
        open_console(driver, vendor_server)
        layout = driver.execute_script("""
            const ids = ['prompt', 'send', 'answer', 'model', 'file'];
            return {
                viewport: document.documentElement.clientWidth,
                scrollWidth: document.documentElement.scrollWidth,
                rights: Object.fromEntries(ids.map((id) => [id,
                    document.querySelector(`[data-testid="${id}"]`).getBoundingClientRect().right])),
            };
        """)
        assert layout["viewport"] == PHONE_WIDTH, layout
        assert layout["scrollWidth"] <= layout["viewport"], f"the page scrolls sideways at phone width: {layout}"
        for testid, right in layout["rights"].items():
            assert right <= layout["viewport"], f"{testid} sticks out of a {PHONE_WIDTH}px screen: {layout}"
        prompt = "hello from a phone"
        ask(driver, prompt)
        assert finished(driver) == f"You said: {prompt}"
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

