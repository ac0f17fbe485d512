"""How fast the demo answers in a real browser: the first answer after the page loads (issue 5).

Run:  python eval/bench_demo.py [--rounds 5] [--chromium /usr/bin/chromium]

Steps:
1. Build the demo on the bundled model and sentsim's FAQ (the model loads once, here) and launch it on 127.0.0.1.
2. Each round opens a fresh browser page (headless Chromium, driven by Playwright), waits for it to load, then
   at once fills the Compare tab and clicks, and waits for the verdict; then asks the FAQ tab one question and
   waits for the reply.
3. Prints a table of medians: start-up (model load and build), page load, first Compare answer after load, first
   FAQ reply.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import socket
import statistics
import sys
import time
from datetime import date

import sentsim
from sentsim import demo as app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_round(browser, url: str) -> dict[str, float]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    t0 = time.perf_counter()
    page.goto(url, wait_until="load")
    page.locator("#sentence1 textarea").wait_for()
    loaded = time.perf_counter()
    page.locator("#sentence1 textarea").fill("A man plays a guitar.")
    page.locator("#sentence2 textarea").fill("Someone is playing a guitar.")
    page.get_by_role("button", name="Compare", exact=True).click()
    page.wait_for_function("() => { const v = document.querySelector('#verdict textarea'); return v && v.value; }")
    compared = time.perf_counter()
    page.get_by_role("tab", name="Ask the FAQ").click()
    page.get_by_label("Your question").fill("how do I install sentsim")
    asked = time.perf_counter()
    page.get_by_role("button", name="Ask", exact=True).click()
    page.locator("#faq-chat [data-testid='bot']").first.wait_for()
    replied = time.perf_counter()
    page.close()
    return {
        "page load (s)": loaded - t0,
        "first Compare answer after load (s)": compared - loaded,
        "first FAQ reply after clicking Ask (s)": replied - asked,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    # 1. the demo, built and launched once
    started = time.perf_counter()
    model = sentsim.load(device="cpu")
    demo = app.build_demo(model=model, feedback_path="runs/bench-demo-feedback.jsonl")
    startup = time.perf_counter() - started
    port = free_port()
    app.launch_demo(demo, port=port, prevent_thread_lock=True, quiet=True)
    rows: list[dict[str, float]] = []
    try:
        # 2. fresh pages, one after another
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            for _ in range(args.rounds):
                rows.append(one_round(browser, f"http://127.0.0.1:{port}/"))
            browser.close()
    finally:
        demo.close()

    # 3. the table
    machine = platform.processor() or platform.machine()
    print(f"\npython eval/bench_demo.py --rounds {args.rounds}, {date.today()}, {machine}")
    print(f"start-up (model load and build_demo): {startup:.2f} s\n")
    print("| step | median | min | max |")
    print("| --- | --- | --- | --- |")
    for key in rows[0]:
        values = [r[key] for r in rows]
        print(f"| {key} | {statistics.median(values):.3f} | {min(values):.3f} | {max(values):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
