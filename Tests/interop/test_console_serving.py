"""How the web console is served and where it may run: content types, ETags and 304, the content
security policy (sent, and enforced by the browser: nothing loads from elsewhere), a phone-width
layout, TLS with HTTP/2 as a deployment serves it, and a server that wants an API key. In a real
browser (console_browser.py) against prism-server and the fake vendors."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import API_KEY
from console_browser import (PHONE_HEIGHT, PHONE_WIDTH, answer_state, ask, browser, by_testid,  # noqa: F401 (fixtures)
                             fake_log_until, finished, http_get, open_console, wait)
from test_vendor_tls import vendor_env
from test_vendors import fakes, png, vendor_server  # noqa: F401 (fixtures)


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
