"""Pages in a real browser, for the report tests: headless Chromium (Debian's `chromium`, which
`make test-browser` installs) driven over the DevTools pipe with the standard library only, and
the checks every page passes without one (balanced tags, nothing loaded from anywhere).

A `Tab` loads a page from file:// at a given width, evaluates JavaScript in it, waits for it to
load again (the live page reloads itself) and saves a full-page screenshot.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
NO_CHROMIUM = "no chromium (make test-browser installs it)"


class _Checker(HTMLParser):
    """Fails on a closing tag that does not match the innermost open one."""
    VOID = {"meta", "link", "br", "input", "img", "hr", "line", "circle", "polyline", "path", "rect"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.tags, self.errors = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()


def self_contained(page: str) -> list[tuple[str, dict]]:
    """Assert that `page` is one whole HTML document that loads nothing from anywhere; its tags."""
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?:|ftp:|url\(|@import", page, re.I), "the page must not reference any URL"
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert not checker.errors and checker.stack == [], (checker.errors, checker.stack)
    for tag, attrs in checker.tags:
        assert "src" not in attrs, f"<{tag} src=…> loads something"
        assert attrs.get("href", "data:").startswith("data:"), f"<{tag} href={attrs['href']}>"
    return checker.tags


class DevTools:
    """Headless Chromium driven over --remote-debugging-pipe (fd 3 in, fd 4 out), stdlib only."""

    def __init__(self, profile: Path):
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()
        hi_r, hi_w = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 50), fcntl.fcntl(res_w, fcntl.F_DUPFD, 50)
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--remote-debugging-pipe"]
        move = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
                "os.execv(sys.argv[3], sys.argv[3:])")
        self.proc = subprocess.Popen([sys.executable, "-c", move, str(hi_r), str(hi_w), CHROMIUM, *flags],
                                     pass_fds=(hi_r, hi_w), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in (cmd_r, res_w, hi_r, hi_w):
            os.close(fd)
        self._buf, self._id, self.events = b"", 0, []

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        return self.wait(lambda m, i=self._id: m.get("id") == i, timeout)

    def wait(self, match, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                m = json.loads(raw)
                if match(m):
                    if "error" in m:
                        raise RuntimeError(m["error"])
                    return m.get("result", m)
                self.events.append(m)
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._res_r], [], [], left)[0]:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._res_r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium exited")
            self._buf += chunk

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._cmd_w)
        os.close(self._res_r)


class Tab:
    """One page in `tools`' browser, `width` CSS pixels wide (380: a phone)."""

    def __init__(self, tools: DevTools, width: int = 1200, height: int = 900):
        self.tools = tools
        target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": width < 600})

    def call(self, method: str, params: dict | None = None, timeout: float = 30) -> dict:
        return self.tools.call(method, params, session=self.session, timeout=timeout)

    def open(self, path: Path) -> None:
        self.tools.events.clear()
        self.call("Page.navigate", {"url": path.as_uri()})
        self.wait_load()

    def wait_load(self, timeout: float = 30) -> None:
        self.tools.wait(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == self.session,
                        timeout)

    def eval(self, js: str):
        seen = self.call("Runtime.evaluate", {"expression": js, "returnByValue": True})
        assert "exceptionDetails" not in seen, seen
        return seen["result"].get("value")

    def errors(self) -> list[dict]:
        """Console errors and uncaught exceptions since the page was opened."""
        return [m for m in self.tools.events if m.get("sessionId") == self.session and (
            m.get("method") == "Runtime.exceptionThrown"
            or (m.get("method") == "Runtime.consoleAPICalled" and m["params"]["type"] in ("error", "assert"))
            or (m.get("method") == "Log.entryAdded" and m["params"]["entry"]["level"] == "error"))]

    def overflows(self) -> bool:
        """Whether the page is wider than the window (a phone would scroll sideways)."""
        return self.eval("document.documentElement.scrollWidth > window.innerWidth")

    def screenshot(self, out: Path, most: int = 6000) -> Path:
        """The whole page (up to `most` px tall) as a PNG at `out`."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], most), "scale": 1}
        shot = self.call("Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True})
        out.write_bytes(base64.b64decode(shot["data"]))
        return out


def open_page(tools: DevTools, path: Path, probe: str, width: int = 1200) -> tuple[dict, list]:
    """Load the page in a fresh tab; (what `probe` saw, console errors and exceptions)."""
    tab = Tab(tools, width)
    tab.open(path)
    return tab.eval(probe), tab.errors()
