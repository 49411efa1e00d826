"""The explorer's HTTP server: the standard library's ThreadingHTTPServer, a static page and JSON endpoints.

Endpoints (every answer is JSON except the page and its static files; a bad value is a 400
``{"error": message, "field": name}`` whose message is the library's own):

==========================================  ===============================================================
``GET  /``, ``GET /static/NAME``            the page (index.html, app.js, style.css: package data)
``GET  /api/members``                       every member: formulas, parameters with allowed ranges, properties
``POST /api/curve``                         f, f', kinks with the derivative convention, the [-2..2] example
``GET  /api/options``                       the Playground's choices, limits and defaults
``GET  /api/health``                        ``{"ok": true, "sessions": n, "training": m}``
``POST /api/sessions``                      a new Playground session from a config: ``{"id", "state"}``
``GET  /api/sessions/ID[?since=V]``         the session's state (only the status when V is current)
``GET  /api/sessions/ID/points``            the training points the session sees
``POST /api/sessions/ID``                   ``{"action": train|pause|step|reset|revive|swap|lr, ...}``
``POST /api/sessions/ID/close``             stop and forget the session (the page's beacon when the tab goes)
==========================================  ===============================================================

Each session trains on its own thread. Closing the tab sends a beacon that ends its session at once; as a fallback
every request on a session is a heartbeat, and a session not heard from for ``session_timeout`` seconds (the
browser crashed, the laptop slept) is stopped and dropped. The default, 150 s, outlasts Chrome's throttling of
a tab hidden for a long time (its timers then fire once a minute), so switching tabs does not end a run.
"""

from __future__ import annotations

import json
import math
import secrets
import sys
import threading
import time
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .curves import EXAMPLE_X, evaluate_curve, members
from .errors import FieldError

__all__ = ["ExploreServer", "make_server", "serve", "DEFAULT_PORT", "MAX_SESSIONS"]

DEFAULT_PORT = 8765
MAX_SESSIONS = 32  # each holds a small model and, while training, a thread
MAX_BODY = 64 * 1024
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def _static_files() -> dict[str, bytes]:
    """The page's files, read once from the installed package (so a wheel install serves the same page)."""
    root = resources.files("relulab.explore") / "static"
    return {entry.name: entry.read_bytes() for entry in root.iterdir() if entry.is_file()
            and any(entry.name.endswith(suffix) for suffix in _TYPES)}


class _NotFound(Exception):
    pass


class ExploreServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer holding the Playground sessions; :meth:`close` stops them all."""

    daemon_threads = True  # a hung browser connection never keeps the process alive after Ctrl-C
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], *, session_timeout: float = 150.0, pace: float = 0.02,
                 warm_up: bool = False) -> None:
        super().__init__(address, _Handler)
        self.session_timeout = session_timeout
        self.pace = pace
        self._warm_up = threading.Lock() if warm_up else None
        self.sessions: dict[str, Any] = {}
        self.sessions_lock = threading.Lock()
        self.static = _static_files()
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="relulab-explore-reaper", daemon=True)
        self._reaper.start()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def _reap(self) -> None:
        interval = max(0.05, min(2.0, self.session_timeout / 4))
        while not self._stop.wait(interval):
            now = time.monotonic()
            with self.sessions_lock:
                stale = [key for key, s in self.sessions.items() if now - s.last_seen > self.session_timeout]
                gone = [self.sessions.pop(key) for key in stale]
            for session in gone:
                session.close()

    def warm_up_once(self) -> None:
        """After the first curve is served, import torch and build a throwaway session on a background thread, so
        the Playground opens at once when asked. Not before: the import holds the GIL for seconds and would
        delay the first frame."""
        if self._warm_up is not None and self._warm_up.acquire(blocking=False):
            from .playground import warm_up

            threading.Thread(target=warm_up, name="relulab-explore-warm-up", daemon=True).start()

    def new_session(self, values: Any) -> tuple[str, Any]:
        from .playground import Session, validate_config

        config = validate_config(values or {})
        with self.sessions_lock:
            if len(self.sessions) >= MAX_SESSIONS:
                raise FieldError("session", f"too many sessions ({MAX_SESSIONS}); close a tab or wait "
                                            f"{self.session_timeout:g} s for idle ones to end")
        session = Session(config, pace=self.pace)
        key = secrets.token_hex(8)
        with self.sessions_lock:
            self.sessions[key] = session
        return key, session

    def session(self, key: str):
        with self.sessions_lock:
            session = self.sessions.get(key)
        if session is None:
            raise _NotFound(f"no session {key!r} (it ended: its tab was closed or it was idle for "
                            f"{self.session_timeout:g} s); reload the page")
        session.touch()
        return session

    def close_session(self, key: str) -> bool:
        with self.sessions_lock:
            session = self.sessions.pop(key, None)
        if session is not None:
            session.close()
        return session is not None

    def health(self) -> dict[str, Any]:
        with self.sessions_lock:
            sessions = list(self.sessions.values())
        return {"ok": True, "sessions": len(sessions), "training": sum(s.running for s in sessions)}

    def close(self) -> None:
        """Stop the reaper and every session, then close the socket."""
        self._stop.set()
        with self.sessions_lock:
            sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            session.close()
        self.server_close()


def _options() -> dict[str, Any]:
    from .playground import INITS, LIMITS, LR_MAX, OPTIMIZERS, TOYS, PlaygroundConfig, module_params

    return {"toys": list(TOYS), "inits": list(INITS), "optimizers": list(OPTIMIZERS),
            "limits": {k: list(v) for k, v in LIMITS.items()}, "lr_max": LR_MAX,
            "defaults": PlaygroundConfig().to_dict(), "activations": list(module_params()),
            "module_params": module_params()}


class _Handler(BaseHTTPRequestHandler):
    server: ExploreServer
    protocol_version = "HTTP/1.1"
    server_version = "relulab-explore"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
        pass  # one line per poll would bury the URL the user needs; errors reach the page as JSON

    # -- plumbing ----------------------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload, allow_nan=False).encode(), "application/json")

    def _error(self, status: int, message: str, field: str | None = None) -> None:
        self._json(status, {"error": message, "field": field})

    def _body(self) -> Any:
        length = self.headers.get("Content-Length")
        try:
            size = int(length) if length is not None else 0
        except ValueError:
            raise FieldError("body", f"Content-Length must be an integer; got {length!r}") from None
        if size > MAX_BODY:
            self.close_connection = True
            raise _TooLarge(f"the request body is {size} bytes; at most {MAX_BODY} are accepted")
        raw = self.rfile.read(size) if size > 0 else b""
        if not raw.strip():
            return {}
        try:
            return json.loads(raw, parse_constant=_no_constant)
        except (ValueError, UnicodeDecodeError) as error:
            raise FieldError("body", f"the request body must be JSON: {error}") from None

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        try:
            self._route(method, path, query)
        except FieldError as error:
            self._error(HTTPStatus.BAD_REQUEST, str(error), error.field)
        except _TooLarge as error:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, str(error), "body")
        except _NotFound as error:
            self._error(HTTPStatus.NOT_FOUND, str(error))
        except _BadMethod as error:
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, str(error))
        except ImportError as error:  # the Playground without torch
            self._error(HTTPStatus.SERVICE_UNAVAILABLE,
                        f"the Playground needs PyTorch ({error.name} is missing): pip install 'relulab[lab]'")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the tab went away mid-answer

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- routes ------------------------------------------------------------------------------------------------
    def _route(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        app = self.server
        if path in ("/", "/index.html") or path.startswith("/static/"):
            _allow(method, "GET")
            name = "index.html" if path in ("/", "/index.html") else path[len("/static/"):]
            if name not in app.static:
                raise _NotFound(f"no file {path!r}")
            suffix = name[name.rfind("."):]
            return self._send(HTTPStatus.OK, app.static[name], _TYPES[suffix])
        if path == "/api/members":
            _allow(method, "GET")
            return self._json(HTTPStatus.OK, {"members": members(), "example_x": list(EXAMPLE_X)})
        if path == "/api/curve":
            _allow(method, "POST")
            body = self._body()
            if not isinstance(body, dict):
                raise FieldError("body", f"the request body must be a JSON object; got {body!r}")
            self._json(HTTPStatus.OK, evaluate_curve(body))
            return app.warm_up_once()
        if path == "/api/options":
            _allow(method, "GET")
            return self._json(HTTPStatus.OK, _options())
        if path == "/api/health":
            _allow(method, "GET")
            return self._json(HTTPStatus.OK, app.health())
        if path == "/api/sessions":
            _allow(method, "POST")
            body = self._body()
            config = body.get("config", {}) if isinstance(body, dict) else body
            key, session = app.new_session(config)
            return self._json(HTTPStatus.CREATED, {"id": key, "state": session.snapshot()})
        if path.startswith("/api/sessions/"):
            return self._session_route(method, path[len("/api/sessions/"):].split("/"), query)
        raise _NotFound(f"no page or endpoint {path!r}")

    def _session_route(self, method: str, parts: list[str], query: dict[str, list[str]]) -> None:
        app = self.server
        key = parts[0]
        if len(parts) == 2 and parts[1] == "close":
            _allow(method, "POST")
            self._body()  # a beacon's body, if any, is read so the connection stays in step
            app.close_session(key)
            return self._send(HTTPStatus.NO_CONTENT, b"", "text/plain")
        session = app.session(key)
        if len(parts) == 2 and parts[1] == "points":
            _allow(method, "GET")
            return self._json(HTTPStatus.OK, session.points)
        if len(parts) != 1:
            raise _NotFound(f"no endpoint {self.path!r}")
        if method == "GET":
            since = query.get("since", [None])[0]
            try:
                version = int(since) if since is not None else None
            except ValueError:
                raise FieldError("since", f"since must be an integer version; got {since!r}") from None
            return self._json(HTTPStatus.OK, session.snapshot(version))
        _allow(method, "POST")
        body = self._body()
        if not isinstance(body, dict):
            raise FieldError("body", f"the request body must be a JSON object; got {body!r}")
        action = body.get("action")
        result: dict[str, Any] = {}
        if action == "train":
            session.train()
        elif action == "pause":
            session.pause()
        elif action == "step":
            session.step()
        elif action == "reset":
            session.reset(body.get("config") or {})
        elif action == "revive":
            result["revived"] = session.revive()
        elif action == "swap":
            result["swapped"] = session.swap(body.get("activation"), body.get("params"))
        elif action == "lr":
            session.set_lr(body.get("lr"))
        else:
            raise FieldError("action", "action must be one of train, pause, step, reset, revive, swap, lr; "
                                       f"got {action!r}")
        result["state"] = session.snapshot()
        return self._json(HTTPStatus.OK, result)


class _TooLarge(Exception):
    pass


class _BadMethod(Exception):
    pass


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise _BadMethod(f"method {method} is not allowed here; use {allowed}")


def _no_constant(name: str) -> float:
    # json.loads accepts NaN and Infinity by default; no field of the explorer takes them.
    raise ValueError(f"{name} is not a JSON number")


def make_server(host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, session_timeout: float = 150.0,
                pace: float = 0.02, warm_up: bool = False) -> ExploreServer:
    """A bound, not yet serving :class:`ExploreServer` (port 0: any free port; see ``.url``).

    ``warm_up=True`` prepares the Playground in the background once the first curve is served (the CLI's choice).
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer in [0, 65535]; got {port!r}")
    if not (isinstance(session_timeout, (int, float)) and math.isfinite(session_timeout) and session_timeout > 0):
        raise ValueError(f"session_timeout must be a number of seconds > 0; got {session_timeout!r}")
    return ExploreServer((host, port), session_timeout=session_timeout, pace=pace, warm_up=warm_up)


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, open_browser: bool = True) -> int:
    """Serve the explorer until Ctrl-C (or SIGTERM); then stop every session and return 0."""
    server = make_server(host, port, warm_up=True)
    try:
        if host not in _LOOPBACK:
            print(f"relulab explore: warning: listening on {host} lets other machines reach the explorer; it has "
                  "no authentication", file=sys.stderr, flush=True)
        print(f"relulab explore: serving {server.url}  (Ctrl-C to stop)", flush=True)
        if open_browser:
            threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:  # anywhere after the socket is bound: a clean stop, not an interruption
        print("relulab explore: stopped", file=sys.stderr, flush=True)
    finally:
        server.close()
    return 0
