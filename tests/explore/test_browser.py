"""The explorer end to end in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

One browser for the module. With ``RELULAB_SCREENSHOTS=DIR`` the tests also write the screenshots the README
shows (curves.png, playground.png, side-by-side.png) into DIR.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (make test installs it: apt-get install chromium)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed "
                                                            "(pip install 'relulab[test]')")

ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SHOTS = os.environ.get("RELULAB_SCREENSHOTS")
TIMEOUT = 45_000  # ms; generous for a shared two-core machine


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="relulab-chromium-")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS, viewport={"width": 1400, "height": 950})
        context.set_default_timeout(TIMEOUT)
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser, server):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url)
    page.wait_for_function("window.explore && window.explore.firstFrame !== null")
    yield page
    page.close()
    assert not errors, errors


def shot(page, name):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name), full_page=True)


def curve(page, name):
    return page.evaluate(f"window.explore.curves[{json.dumps(name)}]")


def session_state(page, runner="playground-runner"):
    return page.evaluate(f"(() => {{ const r = window.explore.sessions[{json.dumps(runner)}];"
                         " return r && r.state ? {...r.state, id: r.id} : null; })()")


STARTED = "(k => window.explore.sessions[k] && window.explore.sessions[k].state)"  # a runner has drawn its session


def wait_for(page, predicate_js, arg=None):
    page.wait_for_function(predicate_js, arg=arg, timeout=TIMEOUT)


def test_curves_open_with_relu_and_a_slider_moves_the_curve(page):
    relu = curve(page, "relu")
    assert relu["example"]["f"] == [0, 0, 0, 1, 2]
    row = page.locator('#example tr[data-member="relu"][data-row="f"] td').all_inner_texts()
    assert row == ["0", "0", "0", "1", "2"]  # the worked example, as the learner reads it

    page.select_option("#member-pick", "leaky_relu")
    page.click("#member-add")
    wait_for(page, "window.explore.curves.leaky_relu !== undefined")
    before = page.evaluate("document.getElementById('plot-f').toDataURL()")
    page.locator("#c-leaky_relu-negative_slope-slider").fill("0.5")  # a range input: moves the slider
    wait_for(page, "Math.abs(window.explore.curves.leaky_relu.f[0] + 2) < 1e-9")  # 0.5 * -4
    leaky = curve(page, "leaky_relu")
    slope = float(page.input_value("#c-leaky_relu-negative_slope"))
    assert slope == pytest.approx(0.5)
    for x, f in zip(leaky["x"], leaky["f"]):
        assert f == pytest.approx(x if x > 0 else slope * x, abs=1e-12)
    assert leaky["example"]["grad"] == pytest.approx([slope, slope, slope, 1, 1])  # f'(0) = slope by convention
    assert page.evaluate("document.getElementById('plot-f').toDataURL()") != before  # the drawing changed

    page.fill("#c-relu-at_zero", "1")  # the other end of relu's subdifferential
    page.press("#c-relu-at_zero", "Enter")
    wait_for(page, "window.explore.curves.relu.example.grad[2] === 1")
    shot(page, "curves.png")

    page.select_option("#member-pick", "relu6")  # bends at 6: the x range widens to show it
    page.click("#member-add")
    wait_for(page, "window.explore.curves.relu6 !== undefined")
    relu6 = curve(page, "relu6")
    assert max(relu6["x"]) == 8 and [(k["x"], k["grad"]) for k in relu6["kinks"]] == [(0, 0), (6, 0)]
    assert all(f == min(max(x, 0), 6) for x, f in zip(relu6["x"], relu6["f"]))


def test_an_invalid_field_shows_the_library_message(page):
    page.select_option("#member-pick", "elu")
    page.click("#member-add")
    wait_for(page, "window.explore.curves.elu !== undefined")
    page.fill("#c-elu-alpha", "-1")
    page.press("#c-elu-alpha", "Enter")
    error = page.locator('[data-member="elu"] .field-error[data-error-for="alpha"]')
    sync_api.expect(error).to_have_text("elu: alpha must be a real number in [0, inf); got -1 (type int)")
    page.fill("#c-elu-alpha", "0.5")
    page.press("#c-elu-alpha", "Enter")
    expected = 0.5 * math.expm1(-2)
    wait_for(page, "expected => Math.abs(window.explore.curves.elu.example.f[0] - expected) < 1e-9", expected)
    sync_api.expect(error).to_have_text("")
    assert curve(page, "elu")["example"]["f"][0] == pytest.approx(expected, rel=1e-12)

    page.click("#tab-playground")
    wait_for(page, f"{STARTED}('playground-runner')")
    page.fill("#pg-lr", "fast")
    page.press("#pg-lr", "Enter")
    sync_api.expect(page.locator('#pg-fields .field-error[data-error-for="lr"]')).to_have_text(
        "lr must be a number in (0, 100]; got 'fast'")


def test_playground_trains_xor_then_a_high_lr_kills_relu_units_and_revive_brings_them_back(page, server):
    page.click("#tab-playground")
    wait_for(page, f"{STARTED}('playground-runner')")
    assert session_state(page)["config"]["data"] == "xor"
    page.click("#pg-train")
    wait_for(page, "window.explore.sessions['playground-runner'].state.epoch >= 12")
    page.click("#pg-pause")
    state = session_state(page)
    losses = state["history"]["loss"]
    assert losses[-1] < 0.5 * losses[0]  # xor is learned: the loss falls
    assert state["history"]["accuracy"][-1] > 0.9
    assert page.locator(".cell[data-state=dead]").count() == 0

    # A learning rate of 1 with momentum on the running network: relu units die within a few epochs.
    page.fill("#pg-lr", "1")
    page.press("#pg-lr", "Enter")
    wait_for(page, "window.explore.sessions['playground-runner'].state.config.lr === 1")
    page.click("#pg-train")
    wait_for(page, "document.querySelectorAll('#pg-units .cell[data-state=dead]').length >= 3")
    page.click("#pg-pause")
    wait_for(page, "!window.explore.sessions['playground-runner'].state.running")
    page.wait_for_timeout(300)  # the last epoch's state reaches the page
    dead = page.locator("#pg-units .cell[data-state=dead]").count()
    state = session_state(page)
    assert dead == sum(layer["dead"] for layer in state["layers"]) >= 3
    # the cells say what the monitor says, which is what the weights say (checked with torch in the test)
    from .test_server import dead_units_by_direct_computation

    session = server.sessions[state["id"]]
    with session.lock:
        direct = dead_units_by_direct_computation(session)
    assert [[u for u, s in enumerate(layer["state"]) if s == "dead"] for layer in state["layers"]] == direct
    assert max(state["history"]["dead"][-1]) > 0
    shot(page, "playground.png")

    page.click("#pg-revive")
    sync_api.expect(page.locator("#pg-events li").last).to_contain_text(f"revived {dead} dead units")
    # Fresh He-initialised rows: most revived units are alive at once (one whose whole input is one-signed can
    # be born dead again); the cells still agree with the weights.
    revived = session_state(page)
    alive_after = page.locator("#pg-units .cell[data-state=alive]").count()
    assert page.locator("#pg-units .cell[data-state=dead]").count() < dead / 2
    assert alive_after > sum(layer["units"] for layer in revived["layers"]) - dead
    with session.lock:
        direct = dead_units_by_direct_computation(session)
    assert [[u for u, s in enumerate(layer["state"]) if s == "dead"] for layer in revived["layers"]] == direct

    page.select_option("#pg-swap-to", "leaky_relu")
    page.click("#pg-swap")
    wait_for(page, "window.explore.sessions['playground-runner'].state.activation === 'leaky_relu'")
    assert page.input_value("#pg-activation") == "leaky_relu"


def test_side_by_side_relu_dies_where_leaky_relu_does_not(page):
    page.click("#tab-side")
    wait_for(page, f"['sb-a-runner', 'sb-b-runner'].every({STARTED})")
    page.fill("#sb-lr", "0.3")  # too high for relu on xor (seed 0), fine for leaky_relu
    page.press("#sb-lr", "Enter")
    wait_for(page, "['sb-a-runner', 'sb-b-runner'].every(k => window.explore.sessions[k].state.config.lr === 0.3)")
    page.click("#sb-train")
    wait_for(page, "document.querySelectorAll('#sb-a .cell[data-state=dead]').length >= 3 && "
                   "['sb-a-runner', 'sb-b-runner'].every(k => window.explore.sessions[k].state.epoch >= 15)")
    page.click("#sb-pause")
    a, b = session_state(page, "sb-a-runner"), session_state(page, "sb-b-runner")
    assert (a["activation"], b["activation"]) == ("relu", "leaky_relu")
    assert a["id"] != b["id"]
    assert {k: v for k, v in a["config"].items() if k not in ("activation", "params")} == \
        {k: v for k, v in b["config"].items() if k not in ("activation", "params")}
    assert sum(layer["dead"] for layer in b["layers"]) == 0  # leaky units are never dead (at most inactive)
    assert b["history"]["accuracy"][-1] > a["history"]["accuracy"][-1]
    page.wait_for_timeout(300)
    shot(page, "side-by-side.png")


def test_two_tabs_do_not_share_a_run_and_closing_a_tab_stops_its_run(browser, server):
    first, second = browser.new_page(), browser.new_page()
    for page in (first, second):
        page.goto(server.url + "#playground")
        wait_for(page, f"{STARTED}('playground-runner')")
    one, two = session_state(first), session_state(second)
    assert one["id"] != two["id"]
    first.click("#pg-train")
    wait_for(first, "window.explore.sessions['playground-runner'].state.epoch >= 3")
    assert session_state(second)["epoch"] == 0  # the other tab's network did not move
    assert server.sessions[one["id"]].running
    session = server.sessions[one["id"]]
    first.close(run_before_unload=True)  # pagehide sends the beacon that ends the run
    deadline = time.monotonic() + 20
    while one["id"] in server.sessions and time.monotonic() < deadline:
        time.sleep(0.05)
    assert one["id"] not in server.sessions and not session.running
    assert two["id"] in server.sessions
    second.close()
