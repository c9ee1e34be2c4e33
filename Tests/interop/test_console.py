"""The web console (GET /) in a real browser (console_browser.py), against a real prism-server whose
vendor plugins talk to the fake vendors of tools/fakes/, so models list and answer. What a user sees
is what is asserted: the model list, an answer streaming in with its route and cost, a conversation,
Stop, files by picker, drop and microphone reaching the vendor, Speak, errors shown, and the Extract
and Server panels."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from prism.v1 import prism_pb2, prism_pb2_grpc

from console_browser import (answer_state, ask, browser, by_testid, fake_log_until, finished, http_get,  # noqa: F401
                             open_console, wait)
from harness import RPC_TIMEOUT_S
from test_vendors import ANTHROPIC_MODEL, GEMINI_MODEL, OPENAI_MODEL, fakes, png, vendor_server  # noqa: F401 (fixtures)


# --- the chat -----------------------------------------------------------------------------------


def test_model_list_shows_the_providers_models(browser, vendor_server):
    driver = browser.driver
    open_console(driver, vendor_server)
    options = [o.get_attribute("value") for o in driver.find_elements("css selector", '[data-testid="model"] option')]
    for model in (OPENAI_MODEL, ANTHROPIC_MODEL, GEMINI_MODEL):
        assert model in options, f"{model} not offered; the list has {options}"
    assert options[0] == "", "the first choice leaves the model to the server"
    # Only generate-capable models are offered (whisper-1 transcribes); the matrix shows every model.
    assert "openai/whisper-1" not in options, options
    limits = driver.find_element("xpath", f"//*[@data-testid='matrix']//tr[td[2][text()='{OPENAI_MODEL}']]/td[8]").text
    with vendor_server.channel() as channel:
        reply = prism_pb2_grpc.PrismStub(channel).ListProviders(prism_pb2.ListProvidersRequest(), timeout=RPC_TIMEOUT_S)
    declared = next(m.limits for p in reply.providers for m in p.models if m.id == OPENAI_MODEL)
    assert limits.startswith(f"images ≤ {declared.max_images}, ") and f"{declared.max_image_long_edge} px" in limits, \
        (limits, declared)
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


def record_a_second(driver) -> None:
    """Records a second or more from chromium's fake microphone (a beep) and waits for the attachment."""
    record = driver.find_element(*by_testid("record"))
    record.click()
    wait(driver, lambda d: (s := d.find_element("id", "record-status").text).startswith("recording… ")
         and float(s.split()[1]) >= 1.0, "a second of recording")
    assert record.get_attribute("aria-pressed") == "true"
    record.click()
    wait(driver, lambda d: ".webm (audio/webm" in d.find_element("id", "attachments").text, "the recording to be attached")
    assert record.get_attribute("aria-pressed") == "false"


def test_a_recording_from_the_microphone_reaches_the_vendor_as_audio(browser, vendor_server, fakes):
    driver = browser.driver
    open_console(driver, vendor_server)
    record_a_second(driver)
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

    # gpt-4o takes no audio: the gateway transcribes the recording first, and the routed line says so.
    record_a_second(driver)
    ask(driver, "a recording for a model without ears", model=OPENAI_MODEL)
    finished(driver)
    routed = driver.find_element(*by_testid("routed")).text
    assert ".webm'→transcript via " in routed, routed


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


def test_an_answer_cut_midway_keeps_its_text_and_says_it_failed(browser, vendor_server):
    driver = browser.driver
    open_console(driver, vendor_server)
    ask(driver, "cut from the console")  # the fake sends two deltas, then drops the connection
    text = finished(driver, "error")
    assert text == "partial answer", text
    error = driver.find_element(*by_testid("error"))
    assert error.is_displayed() and error.text.startswith("The request failed: "), error.text


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


# --- the Extract and Server panels --------------------------------------------------------------


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
