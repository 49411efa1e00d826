"""Every endpoint of the explorer's server, good and bad input, without a browser.

Numbers are checked against direct computations in the test (math, and torch on the session's own weights).
"""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from .conftest import start_server

torch = pytest.importorskip("torch")


def call(server, method, path, body=None, *, raw=None, headers=None):
    """(status, parsed JSON or text, headers) of one request."""
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=30)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    connection.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    kind = response.getheader("Content-Type") or ""
    if kind.startswith("application/json"):
        return response.status, json.loads(payload), response
    return response.status, payload.decode(), response


# -- the page ----------------------------------------------------------------------------------------------------
def test_page_and_static_files_are_served_and_load_nothing_from_the_network(server):
    status, html, response = call(server, "GET", "/")
    assert status == 200 and response.getheader("Content-Type").startswith("text/html")
    assert 'src="/static/app.js"' in html
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        status, text, response = call(server, "GET", f"/static/{name}")
        assert status == 200 and response.getheader("Content-Type").startswith(kind)
        assert len(text) > 1000
    static = Path(__file__).resolve().parents[2] / "src" / "relulab" / "explore" / "static"
    for path in static.iterdir():  # offline: no script, style or font from anywhere but this server
        assert not re.search(r"https?://|//cdn|@import", path.read_text()), path.name
    assert call(server, "GET", "/static/../server.py")[0] == 404
    assert call(server, "GET", "/static/nothing.js")[0] == 404
    assert call(server, "GET", "/nowhere")[0] == 404
    assert call(server, "POST", "/", {})[0] == 405


# -- Curves ------------------------------------------------------------------------------------------------------
def test_members_lists_every_registered_member_with_parameter_ranges(server):
    import relulab as rl

    status, payload, _ = call(server, "GET", "/api/members")
    assert status == 200
    assert [m["name"] for m in payload["members"]] == rl.names()
    assert payload["example_x"] == [-2, -1, 0, 1, 2]
    by_name = {m["name"]: m for m in payload["members"]}
    alpha = by_name["elu"]["params"][0]
    assert (alpha["name"], alpha["default"], alpha["low"], alpha["high"]) == ("alpha", 1.0, 0.0, None)
    slope = by_name["leaky_relu"]["params"][0]
    assert slope["name"] == "negative_slope" and slope["slider"][0] < 0.01 < slope["slider"][1]
    assert [p["name"] for p in by_name["rrelu"]["params"]] == ["lower", "upper", "training", "seed"]  # no rng
    assert by_name["gelu"]["params"][0]["choices"] == ["none", "tanh"]
    assert by_name["prelu"]["params"][0]["name"] == "weight"
    assert by_name["relu"]["has_kink_at_zero"] and not by_name["gelu"]["has_kink_at_zero"]


def test_curve_values_match_direct_formulas(server):
    status, relu, _ = call(server, "POST", "/api/curve", {"name": "relu", "x_min": -3, "x_max": 3, "points": 61})
    assert status == 200
    xs = np.array(relu["x"])
    assert np.allclose(relu["f"], np.maximum(xs, 0.0))
    assert relu["example"] == {"x": [-2, -1, 0, 1, 2], "f": [0, 0, 0, 1, 2], "grad": [0, 0, 0, 1, 1]}
    (kink,) = relu["kinks"]
    assert (kink["x"], kink["grad"], kink["left"], kink["right"], kink["subdifferential"]) == (0, 0, 0, 1, [0, 1])

    _, leaky, _ = call(server, "POST", "/api/curve", {"name": "LeakyReLU", "params": {"negative_slope": 0.2},
                                                      "at_zero": 0.6, "points": 9, "x_min": -4, "x_max": 4})
    assert leaky["name"] == "leaky_relu"
    assert leaky["example"]["f"] == pytest.approx([-0.4, -0.2, 0.0, 1.0, 2.0])
    assert leaky["example"]["grad"] == pytest.approx([0.2, 0.2, 0.6, 1.0, 1.0])  # at_zero applies at 0 only
    assert leaky["kinks"][0]["at_zero"] == 0.6 and leaky["kinks"][0]["subdifferential"] == [0.2, 1.0]

    _, elu, _ = call(server, "POST", "/api/curve", {"name": "elu", "params": {"alpha": 0.5}, "points": 5,
                                                    "x_min": -2, "x_max": 2})
    assert elu["f"] == pytest.approx([0.5 * math.expm1(-2), 0.5 * math.expm1(-1), 0, 1, 2], rel=1e-12)
    (kink,) = elu["kinks"]  # f' jumps at 0 from alpha * e^0 to 1 when alpha != 1; PyTorch's f'(0) = alpha
    assert (kink["left"], kink["right"], kink["grad"]) == pytest.approx((0.5, 1.0, 0.5), abs=1e-5)
    _, smooth, _ = call(server, "POST", "/api/curve", {"name": "elu", "points": 5})
    assert smooth["kinks"] == []  # alpha = 1: f' is continuous at 0
    _, relu6, _ = call(server, "POST", "/api/curve", {"name": "relu6", "x_min": -1, "x_max": 7, "points": 9})
    assert [(k["x"], k["grad"]) for k in relu6["kinks"]] == [(0, 0), (6, 0)]  # f'(6) = 0 by convention
    _, prelu, _ = call(server, "POST", "/api/curve", {"name": "prelu", "params": {"weight": 0.5}, "points": 5,
                                                      "x_min": -2, "x_max": 2})
    assert prelu["example"]["f"] == [-1.0, -0.5, 0.0, 1.0, 2.0]
    _, gelu, _ = call(server, "POST", "/api/curve", {"name": "gelu", "points": 3, "x_min": -1, "x_max": 1})
    assert gelu["f"][2] == pytest.approx(0.5 * (1 + math.erf(1 / math.sqrt(2))), rel=1e-12)


@pytest.mark.parametrize("body, field, words", [
    ({"name": "elu", "params": {"alpha": -1}}, "alpha", "alpha must be a real number in [0, inf); got -1"),
    ({"name": "elu", "params": {"alpha": "abc"}}, "alpha", "alpha must be a real number; got 'abc'"),
    ({"name": "relu", "at_zero": 2}, "at_zero", "at_zero must lie in the subdifferential at 0, [0, 1]; got 2"),
    ({"name": "gelu", "at_zero": 0.5}, "at_zero", "does not apply"),
    ({"name": "rrelu", "params": {"lower": 0.5, "upper": 0.2}}, "lower", "lower must be <= upper"),
    ({"name": "gelu", "params": {"approximate": "fast"}}, "approximate", "one of 'none', 'tanh'"),
    ({"name": "elu", "params": {"beta": 1}}, "params", "unexpected keyword argument 'beta'"),
    ({"name": "nope"}, "name", "unknown activation 'nope'"),
    ({"name": "relu", "x_min": 2, "x_max": 1}, "x_max", "greater than x_min"),
    ({"name": "relu", "points": 1}, "points", "points must be an integer in [2, 4001]"),
    ({"name": "relu", "params": [1]}, "params", "params must be an object"),
])
def test_curve_refuses_bad_values_with_the_library_message(server, body, field, words):
    status, payload, _ = call(server, "POST", "/api/curve", body)
    assert status == 400
    assert payload["field"] == field and words in payload["error"]


def test_bad_requests(server):
    status, payload, _ = call(server, "POST", "/api/curve", raw=b"{not json")
    assert status == 400 and payload["field"] == "body" and "must be JSON" in payload["error"]
    status, payload, _ = call(server, "POST", "/api/curve", raw=b'{"name": "relu", "x_min": NaN}')
    assert status == 400 and "NaN is not a JSON number" in payload["error"]
    status, payload, _ = call(server, "POST", "/api/curve", [1, 2])
    assert status == 400 and "JSON object" in payload["error"]
    status, payload, _ = call(server, "POST", "/api/curve", raw=b"x" * (64 * 1024 + 1))
    assert status == 413
    status, payload, _ = call(server, "GET", "/api/curve")
    assert status == 405 and "use POST" in payload["error"]
    status, payload, _ = call(server, "POST", "/api/curve", raw=b"{}", headers={"Content-Length": "ten"})
    assert status == 400


# -- Playground --------------------------------------------------------------------------------------------------
def test_options(server):
    status, options, _ = call(server, "GET", "/api/options")
    assert status == 200
    assert options["toys"] == ["xor", "moons", "circles", "spiral"]
    assert options["inits"] == ["he", "default", "xavier"]
    assert options["module_params"]["rrelu"] == ["lower", "upper"] and options["module_params"]["prelu"] == []
    assert options["defaults"]["activation"] == "relu"


@pytest.mark.parametrize("config, field, words", [
    ({"lr": -1}, "lr", "lr must be a number in (0, 100]; got -1"),
    ({"lr": "fast"}, "lr", "got 'fast'"),
    ({"depth": 0}, "depth", "depth must be an integer in [1, 6]; got 0"),
    ({"width": 2.5}, "width", "width must be an integer in [1, 32]"),
    ({"data": "mnist"}, "data", "data must be one of xor, moons, circles, spiral"),
    ({"init": "zeros"}, "init", "init must be one of he, default, xavier"),
    ({"activation": "nope"}, "activation", "unknown activation 'nope'"),
    ({"activation": "elu", "params": {"alpha": -1}}, "alpha", "alpha must be a real number in [0, inf); got -1"),
    ({"colour": "red"}, "colour", "unknown field 'colour'"),
])
def test_session_refuses_a_bad_config(server, config, field, words):
    status, payload, _ = call(server, "POST", "/api/sessions", {"config": config})
    assert status == 400
    assert payload["field"] == field and words in payload["error"]


def dead_units_by_direct_computation(session):
    """Per hidden layer, the units whose pre-activation is <= 0 on every training point: torch, in the test."""
    dead = []
    h = session.x
    with torch.no_grad():
        linears = [m for m in session.model if isinstance(m, torch.nn.Linear)]
        acts = [m for m in session.model if not isinstance(m, (torch.nn.Linear, torch.nn.Flatten))]
        for linear, act in zip(linears, acts):
            pre = linear(h)
            dead.append(sorted(torch.nonzero((pre <= 0).all(0)).flatten().tolist()))
            h = act(pre)
    return dead


def test_session_steps_revives_swaps_and_stays_independent(server):
    status, made, _ = call(server, "POST", "/api/sessions", {"config": {"data": "xor", "lr": 1.0, "seed": 0}})
    assert status == 201 and made["state"]["epoch"] == 0 and len(made["state"]["layers"]) == 2
    key = made["id"]
    _, other, _ = call(server, "POST", "/api/sessions", {"config": {"data": "moons"}})
    assert other["id"] != key
    session = server.sessions[key]
    _, points, _ = call(server, "GET", f"/api/sessions/{key}/points")
    assert len(points["x"]) == len(points["y"]) == 720 and points["classes"] == 2

    for _ in range(6):  # lr 1.0 with momentum: the relu units die within a few epochs (seed 0)
        _, result, _ = call(server, "POST", f"/api/sessions/{key}", {"action": "step"})
    state = result["state"]
    assert state["epoch"] == 6 and state["status"] == "paused"
    reported = [[u for u, s in enumerate(layer["state"]) if s == "dead"] for layer in state["layers"]]
    assert reported == dead_units_by_direct_computation(session)
    assert sum(map(len, reported)) > 0
    assert state["history"]["dead"][-1] == [len(d) / 8 for d in reported]

    _, untouched, _ = call(server, "GET", f"/api/sessions/{other['id']}")
    assert untouched["epoch"] == 0 and untouched["config"]["data"] == "moons"  # the other tab's run

    _, revived, _ = call(server, "POST", f"/api/sessions/{key}", {"action": "revive"})
    assert revived["revived"] == sum(map(len, reported))
    after = [[u for u, s in enumerate(layer["state"]) if s == "dead"] for layer in revived["state"]["layers"]]
    assert after == dead_units_by_direct_computation(session) == [[], []]
    assert revived["state"]["events"][-1]["what"] == f"revived {revived['revived']} dead units"

    for _ in range(4):
        _, result, _ = call(server, "POST", f"/api/sessions/{key}", {"action": "step"})
    dead_before = [[u for u, s in enumerate(layer["state"]) if s == "dead"] for layer in result["state"]["layers"]]
    _, swapped, _ = call(server, "POST", f"/api/sessions/{key}", {"action": "swap", "activation": "leaky_relu",
                                                                  "params": {"negative_slope": 0.1}})
    assert swapped["swapped"] == 2 and swapped["state"]["activation"] == "leaky_relu"
    assert all(isinstance(m, torch.nn.Module) and getattr(m, "params", {}).get("negative_slope") == 0.1
               for m in session.model if not isinstance(m, (torch.nn.Linear, torch.nn.Flatten)))
    # Weights are kept: the first layer's dead units are now inactive (leaky units are never dead).
    layer = swapped["state"]["layers"][0]
    assert layer["dead"] == 0
    assert [u for u, s in enumerate(layer["state"]) if s == "inactive"] == dead_before[0]

    status, payload, _ = call(server, "POST", f"/api/sessions/{key}", {"action": "swap", "activation": "elu",
                                                                       "params": {"alpha": 0}})
    assert status == 200  # alpha = 0 is allowed by the family ([0, inf))
    status, payload, _ = call(server, "POST", f"/api/sessions/{key}", {"action": "swap", "activation": "elu",
                                                                       "params": {"alpha": -2}})
    assert status == 400 and payload["field"] == "alpha"

    _, reset, _ = call(server, "POST", f"/api/sessions/{key}", {"action": "reset", "config": {"width": 4}})
    assert reset["state"]["epoch"] == 0 and [l["units"] for l in reset["state"]["layers"]] == [4, 4]
    assert reset["state"]["activation"] == "elu"  # reset keeps what the run had, changing only what is given
    for key_ in (key, other["id"]):
        assert call(server, "POST", f"/api/sessions/{key_}/close")[0] == 204
    assert call(server, "GET", f"/api/sessions/{key}")[0] == 404


def test_training_runs_off_the_request_thread_and_pauses(server):
    _, made, _ = call(server, "POST", "/api/sessions", {"config": {"data": "xor", "lr": 0.03}})
    key = made["id"]
    status, result, _ = call(server, "POST", f"/api/sessions/{key}", {"action": "train"})
    assert status == 200 and result["state"]["running"]
    epochs = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not epochs or epochs[-1] < 10):
        # the server answers other requests while the session trains
        assert call(server, "GET", "/api/health")[1]["training"] >= 1
        assert call(server, "POST", "/api/curve", {"name": "relu", "points": 5})[0] == 200
        epochs.append(call(server, "GET", f"/api/sessions/{key}")[1]["epoch"])
        time.sleep(0.05)
    assert epochs[-1] >= 10 and epochs == sorted(epochs)
    _, state, _ = call(server, "GET", f"/api/sessions/{key}")
    assert state["history"]["loss"][-1] < 0.5 * state["history"]["loss"][0]
    _, paused, _ = call(server, "POST", f"/api/sessions/{key}", {"action": "pause"})
    assert not paused["state"]["running"]
    time.sleep(0.3)
    frozen = call(server, "GET", f"/api/sessions/{key}")[1]["epoch"]
    time.sleep(0.3)
    assert call(server, "GET", f"/api/sessions/{key}")[1]["epoch"] == frozen
    version = call(server, "GET", f"/api/sessions/{key}")[1]["version"]
    _, brief, _ = call(server, "GET", f"/api/sessions/{key}?since={version}")  # nothing new: the status only
    assert "history" not in brief and brief["epoch"] == frozen and brief["version"] == version
    assert "history" in call(server, "GET", f"/api/sessions/{key}?since={version - 1}")[1]
    status, payload, _ = call(server, "POST", f"/api/sessions/{key}", {"action": "lr", "lr": 0.5})
    assert status == 200 and payload["state"]["config"]["lr"] == 0.5
    assert server.sessions[key].optimizer.param_groups[0]["lr"] == 0.5
    status, payload, _ = call(server, "POST", f"/api/sessions/{key}", {"action": "lr", "lr": 0})
    assert status == 400 and payload["field"] == "lr"
    status, payload, _ = call(server, "POST", f"/api/sessions/{key}", {"action": "fly"})
    assert status == 400 and payload["field"] == "action"
    status, payload, _ = call(server, "GET", f"/api/sessions/{key}?since=x")
    assert status == 400 and payload["field"] == "since"
    assert call(server, "GET", f"/api/sessions/{key}/nothing")[0] == 404
    assert call(server, "POST", f"/api/sessions/{key}/close")[0] == 204


def test_a_session_not_heard_from_is_stopped():
    srv = start_server(session_timeout=0.3)
    try:
        _, made, _ = call(srv, "POST", "/api/sessions", {"config": {}})
        session = srv.sessions[made["id"]]
        call(srv, "POST", f"/api/sessions/{made['id']}", {"action": "train"})
        deadline = time.monotonic() + 10
        while srv.sessions and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not srv.sessions and not session.running
        status, payload, _ = call(srv, "GET", f"/api/sessions/{made['id']}")
        assert status == 404 and "reload the page" in payload["error"]
    finally:
        srv.stop()


def test_make_server_checks_its_arguments():
    from relulab.explore import make_server

    with pytest.raises(ValueError, match=r"port must be an integer in \[0, 65535\]; got 70000"):
        make_server(port=70000)
    with pytest.raises(ValueError, match="session_timeout must be"):
        make_server(port=0, session_timeout=0)


# -- the command -------------------------------------------------------------------------------------------------
def test_cli_serves_on_loopback_and_stops_cleanly_on_ctrl_c(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    process = subprocess.Popen([sys.executable, "-m", "relulab.cli", "explore", "--port", "0", "--no-browser"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        match = re.search(r"serving http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        port = int(match.group(1))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/api/health")
        assert json.loads(connection.getresponse().read()) == {"ok": True, "sessions": 0, "training": 0}
        connection.close()

        taken = subprocess.run([sys.executable, "-m", "relulab.cli", "explore", "--port", str(port), "--no-browser"],
                               capture_output=True, text=True, env=env, timeout=60)
        assert taken.returncode == 2
        assert f"relulab explore: error: cannot serve on 127.0.0.1:{port}:" in taken.stderr
        assert "Traceback" not in taken.stderr

        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert "relulab explore: stopped" in err and "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_cli_warns_when_listening_beyond_loopback():
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    process = subprocess.Popen([sys.executable, "-m", "relulab.cli", "explore", "--host", "0.0.0.0", "--port", "0",
                                "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert re.search(r"serving http://0\.0\.0\.0:\d+/", process.stdout.readline())
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0
        assert "warning: listening on 0.0.0.0 lets other machines reach the explorer" in err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_curves_need_no_torch_and_the_playground_says_what_to_install(server, monkeypatch):
    code = ("import sys; from relulab.explore import make_server; from relulab.explore.curves import evaluate_curve, "
            "members; members(); evaluate_curve({'name': 'elu'}); print('torch' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.strip() == "False", done.stderr

    import relulab.explore.playground as playground

    def without_torch():
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(playground, "module_params", without_torch)
    status, payload, _ = call(server, "GET", "/api/options")
    assert status == 503
    assert payload["error"] == "the Playground needs PyTorch (torch is missing): pip install 'relulab[lab]'"
