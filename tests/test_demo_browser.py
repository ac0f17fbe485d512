"""The demo in a real browser: headless Chromium from Debian's packages, driven by Playwright. It fills both
sentences, clicks, and reads the score and verdict from the page; it asks the FAQ tab a question it knows and one it
does not, and reads both replies; it saves a screenshot of each tab.

Screenshots go to the test's temporary folder, or to the folder SENTSIM_SCREENSHOTS names (the README's come from
``SENTSIM_SCREENSHOTS=docs/screenshots pytest tests/test_demo_browser.py``). Without Chromium the tests skip,
except in CI (CI=true), where .ci/run installs it and a skip would hide a broken set-up.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("gradio")
sync_api = pytest.importorskip("playwright.sync_api")

from sentsim import demo as app  # noqa: E402
from tests.conftest import free_port  # noqa: E402

CHROMIUM = os.environ.get("SENTSIM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("SENTSIM_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def page(bundled, tmp_path_factory):
    if not Path(CHROMIUM).is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"no Chromium at {CHROMIUM}: .ci/run installs it with apt-get install chromium")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    demo = app.build_demo(model=bundled, feedback_path=tmp_path_factory.mktemp("fb") / "feedback.jsonl")
    port = free_port()
    app.launch_demo(demo, port=port, prevent_thread_lock=True, quiet=True)
    with sync_api.sync_playwright() as p:
        # --no-sandbox: Chromium's sandbox cannot start as root, which is how CI runs
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        tab.set_default_timeout(30_000)
        tab.goto(f"http://127.0.0.1:{port}/")
        try:
            yield tab
        finally:
            browser.close()
            demo.close()


def _compare(page, a: str, b: str) -> tuple[float, str]:
    page.get_by_role("tab", name="Compare").click()
    page.locator("#sentence1 textarea").fill(a)
    page.locator("#sentence2 textarea").fill(b)
    old = page.locator("#score input").input_value()
    page.get_by_role("button", name="Compare", exact=True).click()
    page.wait_for_function(
        "old => { const v = document.querySelector('#verdict textarea'); const s = document.querySelector('#score "
        "input'); return v && v.value.length > 0 && s.value !== old; }",
        arg=old,
    )
    return float(page.locator("#score input").input_value()), page.locator("#verdict textarea").input_value()


def _ask(page, question: str) -> str:
    page.get_by_role("tab", name="Ask the FAQ").click()
    replies = page.locator("#faq-chat [data-testid='bot']")
    before = replies.count()
    page.get_by_label("Your question").fill(question)
    page.get_by_role("button", name="Ask", exact=True).click()
    sync_api.expect(replies).to_have_count(before + 1)
    return replies.nth(before).inner_text()


def test_compare_shows_score_and_verdict(page, shots):
    score, verdict = _compare(page, "A man plays a guitar.", "Someone is playing a guitar.")
    assert verdict == "same meaning" and 0.78 < score <= 1.0
    page.screenshot(path=str(shots / "compare.png"), full_page=True)
    low, verdict = _compare(page, "A man plays a guitar.", "The stock market fell sharply today.")
    assert verdict == "different" and low < score - 0.5


def test_ask_answers_a_known_question_and_says_it_does_not_know(page, shots):
    known = _ask(page, "how do I install sentsim")
    assert "install.sh" in known and "Matched FAQ question" in known
    unknown = _ask(page, "what is the capital of France")
    assert "don't know" in unknown.lower() or "do not know" in unknown.lower()
    assert "install.sh" not in unknown
    page.screenshot(path=str(shots / "ask.png"), full_page=True)


def test_batch_and_search_tabs_render(page, shots):
    for name, file in (("Batch", "batch.png"), ("Search", "search.png")):
        page.get_by_role("tab", name=name).click()
        sync_api.expect(
            page.get_by_role("button", name="Score the file" if name == "Batch" else "Search")
        ).to_be_visible()
        page.screenshot(path=str(shots / file), full_page=True)
    assert all((shots / f).stat().st_size > 10_000 for f in ("batch.png", "search.png"))
