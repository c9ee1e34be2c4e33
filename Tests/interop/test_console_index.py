"""The console's Index panel in a real browser (console_browser.py) against a real prism-server with
the vendor fakes: a PDF and a Markdown file uploaded by the file picker (IndexDocument as Connect
client streaming), the index's documents listed, then questions: the hits alone (retrieve only),
an answer from the OpenAI fake that saw the retrieved page, and an unknown index's error."""

from __future__ import annotations

import json
from pathlib import Path

from console_browser import browser, by_testid, open_console, wait  # noqa: F401 (a fixture)
from pdfmaker import text_pdf
from test_vendors import OPENAI_MODEL, fakes, vendor_server  # noqa: F401 (fixtures)


def upload(driver, index: str, path: Path) -> str:
    """Uploads `path` into `index` through the panel; returns the status line once it is done."""
    name = driver.find_element(*by_testid("index-name"))
    name.clear()
    name.send_keys(index)
    driver.find_element(*by_testid("index-file")).send_keys(str(path))
    driver.find_element(*by_testid("index-upload")).click()
    status = driver.find_element(*by_testid("index-status"))
    wait(driver, lambda d: status.get_attribute("data-state") in ("done", "error"), f"the upload of {path.name} to end")
    assert status.get_attribute("data-state") == "done", driver.find_element(*by_testid("index-upload-error")).text
    return status.text


def ask_index(driver, question: str, *, retrieve_only: bool, model: str = "") -> str:
    """Asks the panel's index; returns the end state of the answer."""
    from selenium.webdriver.support.ui import Select
    Select(driver.find_element(*by_testid("model"))).select_by_value(model)
    box = driver.find_element(*by_testid("index-question"))
    box.clear()
    box.send_keys(question)
    checkbox = driver.find_element(*by_testid("index-retrieve-only"))
    if checkbox.is_selected() != retrieve_only:
        checkbox.click()
    driver.find_element(*by_testid("index-ask")).click()
    answer = driver.find_element(*by_testid("index-answer"))
    wait(driver, lambda d: answer.get_attribute("data-state") in ("done", "error", "cancelled"), "the index's answer to end")
    return answer.get_attribute("data-state")


def test_upload_a_pdf_and_notes_then_ask_the_index(browser, vendor_server, fakes, tmp_path):
    driver = browser.driver
    open_console(driver, vendor_server)
    pdf = tmp_path / "handbook.pdf"
    pdf.write_bytes(text_pdf([["Welcome to the handbook."],
                              ["Key rotation", "Rotate the signing key every ninety days with prismctl rotate."]]))
    notes = tmp_path / "notes.md"
    notes.write_text("# Lunch\n\nThe canteen opens at noon on weekdays.\n")

    status = upload(driver, "console-docs", pdf)
    assert status.startswith("handbook.pdf (") and ": 2 pages, " in status, status
    assert "notes.md" not in status
    status = upload(driver, "console-docs", notes)
    assert "notes.md (" in status and "indexed as " in status, status
    table = driver.find_element(*by_testid("index-documents"))
    wait(driver, lambda d: len(table.find_elements("css selector", "tbody tr")) == 2, "both documents in the list")
    titles = sorted(row.find_elements("css selector", "td")[1].text for row in table.find_elements("css selector", "tbody tr"))
    assert titles == ["handbook", "notes"], titles

    # Retrieval alone: the hit is the PDF's second page, with its text.
    assert ask_index(driver, "how often is the signing key rotated?", retrieve_only=True) == "done", \
        driver.find_element(*by_testid("index-error")).text
    hits = driver.find_element(*by_testid("index-hits"))
    assert hits.is_displayed(), "the hits are shown"
    first = hits.find_elements("css selector", "li")[0].text
    assert " p.2] " in first and "ninety days" in first, hits.text

    # An answer: the fake echoes the question it was sent with the retrieved page and chunks.
    question = "what does the handbook say about key rotation?"
    assert ask_index(driver, question, retrieve_only=False, model=OPENAI_MODEL) == "done", \
        driver.find_element(*by_testid("index-error")).text
    answer = driver.find_element(*by_testid("index-answer")).text
    assert answer.startswith("You said: ") and question in answer and "[image " in answer, answer
    assert OPENAI_MODEL in driver.find_element("id", "index-routed").text
    sent = [e for e in fakes["openai"].entries() if "path" in e and question in json.dumps(e["body"])]
    assert len(sent) == 1 and sent[0]["body"]["images"], "the vendor saw the retrieved page image"


def test_asking_an_index_that_does_not_exist_shows_the_servers_error(browser, vendor_server):
    driver = browser.driver
    open_console(driver, vendor_server)
    name = driver.find_element(*by_testid("index-name"))
    name.clear()
    name.send_keys("no-such-index-here")
    assert ask_index(driver, "anything?", retrieve_only=True) == "error"
    error = driver.find_element(*by_testid("index-error"))
    assert error.is_displayed() and "The question failed: not_found" in error.text and "no-such-index-here" in error.text, error.text
