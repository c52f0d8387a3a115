"""Load a page in headless Chromium over the DevTools protocol, offline, and report what it did.

`inspect_page(path)` starts Chromium (no network: every http(s)/ws request is blocked and
recorded), opens the file, plays the page's <video id="overlay"> (muted), waits for the 3D view to
say `data-viewer="ok"`, and returns the video's state, the console errors, every non-file request
and a screenshot (PNG bytes) plus the 3D canvas's rectangle in it. Used by the report tests and by
`python -m tests.browser REPORT.html SHOT.png` (a screenshot for people).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-unsafe-swiftshader", "--autoplay-policy=no-user-gesture-required", "--hide-scrollbars"]
PROBE = """(async () => {
  const ds = document.body.dataset, v = document.getElementById('overlay');
  const out = {};
  if (v) {
    for (let i = 0; i < 100 && v.readyState < 2; i++) await new Promise(r => setTimeout(r, 100));
    try { await v.play(); out.played = true; } catch (e) { out.played = String(e); }
    const t0 = performance.now();
    while (v.currentTime < 0.3 && performance.now() - t0 < 5000) await new Promise(r => setTimeout(r, 100));
    v.pause();
    Object.assign(out, {readyState: v.readyState, duration: v.duration, currentTime: v.currentTime,
                        videoWidth: v.videoWidth, error: v.error && v.error.code});
  }
  for (let i = 0; i < 100 && !ds.viewer; i++) await new Promise(r => setTimeout(r, 100));
  await new Promise(r => setTimeout(r, 300));
  const c = document.querySelector('#viewer canvas');
  if (c) { c.scrollIntoView({block: 'center'}); await new Promise(r => setTimeout(r, 300)); }
  const r = c && c.getBoundingClientRect();
  Object.assign(out, {viewer: ds.viewer || null, viewerFrame: ds.viewerFrame || null, pageErrors: ds.errors || null,
                      canvas: r ? [r.x, r.y, r.width, r.height] : null, dpr: window.devicePixelRatio});
  return JSON.stringify(out);
})()"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class _Cdp:
    """A minimal DevTools protocol client on one page target (commands in order, events kept)."""

    def __init__(self, ws_url: str):
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=64 * 2**20)
        self.n, self.events = 0, []

    def call(self, method: str, timeout: float = 60, **params):
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        end = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(end - time.monotonic(), 0.1)))
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
            self.events.append(msg)

    def wait_event(self, name: str, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while not any(e.get("method") == name for e in self.events):
            self.events.append(json.loads(self.ws.recv(timeout=max(end - time.monotonic(), 0.1))))


def inspect_page(page: str | Path, width: int = 1200, height: int = 1000, full_page: bool = False) -> dict:
    """See the module docstring. Raises RuntimeError when Chromium is missing or does not start."""
    exe = chromium()
    if not exe:
        raise RuntimeError("chromium not installed")
    # Chromium's helper processes may still write into the profile after the browser has quit (seen once in a CI
    # rehearsal: rmtree raced a late write into Default/): the whole process group is ended, and a file left
    # behind in a throwaway profile is not a test failure.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as prof:
        proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={prof}", "--remote-debugging-port=0",
                                 f"--window-size={width},{height}", "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            port_file = Path(prof) / "DevToolsActivePort"
            for _ in range(200):
                if port_file.is_file() and port_file.read_text().strip():
                    break
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
            cdp = _Cdp(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
            for m in ("Runtime.enable", "Log.enable", "Page.enable", "Network.enable"):
                cdp.call(m)
            cdp.call("Network.setBlockedURLs", urls=["http://*", "https://*", "ws://*", "wss://*"])
            cdp.call("Page.navigate", url=Path(page).resolve().as_uri())
            cdp.wait_event("Page.loadEventFired")
            probe = json.loads(cdp.call("Runtime.evaluate", expression=PROBE, awaitPromise=True, timeout=90)["result"]["value"])
            shot = base64.b64decode(cdp.call("Page.captureScreenshot", format="png")["data"])
            full = None
            if full_page:
                size = cdp.call("Page.getLayoutMetrics")["cssContentSize"]
                full = base64.b64decode(cdp.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                                                 clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                                                       "scale": 1})["data"])
            errors = [e["params"] for e in cdp.events if e.get("method") == "Runtime.exceptionThrown"
                      or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
                      or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
            requests = [e["params"]["request"]["url"] for e in cdp.events if e.get("method") == "Network.requestWillBeSent"]
            cdp.ws.close()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            try:
                os.killpg(proc.pid, signal.SIGKILL)           # helpers the browser left behind
            except ProcessLookupError:
                pass
    return {**probe, "console_errors": errors, "network": [u for u in requests if not u.startswith(("file:", "data:", "blob:"))],
            "screenshot": shot, "screenshot_full": full}


def canvas_pixels(result: dict):
    """The 3D canvas's pixels (H, W, 3 BGR) cut from the screenshot."""
    import cv2
    import numpy as np

    img = cv2.imdecode(np.frombuffer(result["screenshot"], np.uint8), cv2.IMREAD_COLOR)
    x, y, w, h = (int(round(v * result["dpr"])) for v in result["canvas"])
    return img[max(y, 0):y + h, max(x, 0):x + w]


if __name__ == "__main__":   # python -m tests.browser PAGE SHOT.png [FULL_PAGE.png]
    res = inspect_page(sys.argv[1], full_page=len(sys.argv) > 3)
    Path(sys.argv[2]).write_bytes(res.pop("screenshot"))
    full = res.pop("screenshot_full")
    if full:
        Path(sys.argv[3]).write_bytes(full)
    print(json.dumps(res, indent=1))
