"""Headless Chromium driven over the DevTools protocol: enough to load a page, read its DOM,
press keys, click, and collect console errors and failed loads. No Playwright: its browser
download cannot work offline; Debian's ``chromium`` package is the browser
(``apt-get install -y chromium``). The protocol speaks over ``websockets`` (already locked).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from labs.common.processes import stop_process_group

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
FLAGS = (
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
)


def find_chromium() -> str | None:
    """``$CHROMIUM`` if set, else the first Chromium on PATH."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


def chromium_flags(user_data_dir: Path) -> list[str]:
    flags = [*FLAGS, f"--user-data-dir={user_data_dir}"]
    if os.geteuid() == 0:  # Chromium's sandbox refuses to run as root
        flags.append("--no-sandbox")
    return flags


class Browser:
    """One headless Chromium with one page; ``events`` holds every protocol event seen."""

    def __init__(self, executable: str, profile: Path, *, size: tuple[int, int] = (1280, 900)):
        self.profile = profile
        self.process = subprocess.Popen(
            [executable, *chromium_flags(profile), "--remote-debugging-port=0",
             f"--window-size={size[0]},{size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=(profile.parent / "chromium.log").open("w"),
            start_new_session=True,
        )  # fmt: skip
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        try:
            self._connect()
        except BaseException:
            self.close()
            raise

    def _connect(self) -> None:
        from websockets.sync.client import connect

        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.profile.parent / "chromium.log").read_text(errors="replace")
                raise RuntimeError(f"Chromium did not start:\n{log[-2000:]}")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        import httpx

        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t for t in targets if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=20)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    def send(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        """Call ``method`` and return its result; events that arrive meanwhile are kept."""
        call_id = next(self._ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_for(self, event: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for seen in self.events:
                if seen["method"] == event:
                    self.events.remove(seen)
                    return seen
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if "method" in message:
                self.events.append(message)

    def open(self, url: str, timeout: float = 60) -> None:
        """Navigate to ``url``; wait for the load unless only the fragment changed (an SPA's
        hash route: no new document, no load event)."""
        self.events = [e for e in self.events if e["method"] != "Page.loadEventFired"]
        navigation = self.send("Page.navigate", url=url, timeout=timeout)
        if "errorText" in navigation:
            raise RuntimeError(f"{url}: {navigation['errorText']}")
        if navigation.get("loaderId"):
            self.wait_for("Page.loadEventFired", timeout=timeout)

    def js(self, expression: str) -> Any:
        """Evaluate ``expression`` in the page and return its JSON value."""
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def poll(self, expression: str, timeout: float = 5) -> Any:
        """The value of ``expression`` once it is truthy (events such as ``toggle`` fire after
        the action that caused them), or its last value after ``timeout`` seconds."""
        import time

        deadline = time.monotonic() + timeout
        value = self.js(expression)
        while not value and time.monotonic() < deadline:
            time.sleep(0.05)
            value = self.js(expression)
        return value

    def press(self, key: str) -> None:
        """A real key press (keydown with its text, keyup), as a user types it."""
        code = {"Enter": 13}.get(key, ord(key.upper()) if len(key) == 1 else 0)
        text = "\r" if key == "Enter" else key
        self.send("Input.dispatchKeyEvent", type="keyDown", key=key, text=text,
                  windowsVirtualKeyCode=code)  # fmt: skip
        self.send("Input.dispatchKeyEvent", type="keyUp", key=key, windowsVirtualKeyCode=code)

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the first element matching ``selector``."""
        box = self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center', behavior: 'instant'});"
            " const r = e.getBoundingClientRect(), x = r.x + r.width / 2, y = r.y + r.height / 2;"
            " const hit = document.elementFromPoint(x, y);"
            " return [x, y, !!hit && e.contains(hit), hit ? hit.outerHTML.slice(0, 80) : null];"
            " })()"
        )
        if not box[2]:  # something covers it: a user could not click it either
            raise AssertionError(f"{selector} is covered by {box[3]!r}")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1],
                      button="left", clickCount=1)  # fmt: skip

    def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            metrics = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": metrics["width"],
                              "height": min(metrics["height"], 12000), "scale": 1}  # fmt: skip
        data = self.send("Page.captureScreenshot", **params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads seen so far."""
        found = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url')}")
            elif method == "Network.loadingFailed":
                found.append(f"load failed: {params.get('errorText')}")
        return found

    def close(self) -> None:
        try:
            if hasattr(self, "ws"):
                self.ws.close()
        finally:
            stop_process_group(self.process, grace=10)
