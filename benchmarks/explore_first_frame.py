"""How long a learner waits: from `relulab explore --no-browser` starting to the page's first frame.

Starts headless Chromium first (its own start-up is not the explorer's), then the command in a fresh process, and
times: the URL printed (server listening), the first curve drawn (page loaded, members fetched, relu evaluated
and drawn), and the Playground's first network drawn (torch imported, data loaded, model built and probed).

    python benchmarks/explore_first_frame.py [--repeats 3] [--dwell 10]

``--dwell S``: seconds the learner spends on Curves before opening the Playground (the server prepares torch in
the background meanwhile); the Playground's time is then also given from the click.

Needs Debian's chromium at /usr/bin/chromium and Playwright's Python package.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def once(context, env, dwell: float) -> dict[str, float]:
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "relulab.cli", "explore", "--port", "0", "--no-browser"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = re.search(r"http://\S+", process.stdout.readline()).group(0)
        listening = time.perf_counter() - started
        page = context.new_page()
        page.goto(url)
        page.wait_for_function("window.explore && window.explore.firstFrame !== null", timeout=60_000)
        first_frame = time.perf_counter() - started
        page.wait_for_timeout(1000 * dwell)
        clicked = time.perf_counter()
        page.click("#tab-playground")
        page.wait_for_function("window.explore.sessions['playground-runner'] && "
                               "window.explore.sessions['playground-runner'].state", timeout=120_000)
        playground = time.perf_counter() - started
        page.close()
        return {"listening": listening, "first_frame": first_frame, "playground": playground,
                "after_click": time.perf_counter() - clicked}
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dwell", type=float, default=0.0)
    args = parser.parse_args()
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    profile = tempfile.mkdtemp(prefix="relulab-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(profile, executable_path="/usr/bin/chromium",
                                                                    headless=True, args=ARGS)
            for i in range(args.repeats):
                t = once(context, env, args.dwell)
                print(f"run {i + 1}: server listening {t['listening']:.2f} s, first frame (curves drawn) "
                      f"{t['first_frame']:.2f} s, playground drawn {t['playground']:.2f} s "
                      f"({t['after_click']:.2f} s after its tab was clicked)", flush=True)
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
