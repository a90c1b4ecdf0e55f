"""Open an eqcheck HTML report in headless Chromium: record every request, check that the charts are laid
out, take a screenshot.

    python benchmarks/render_html_in_chromium.py                       # p4cnn_broken under p4
    python benchmarks/render_html_in_chromium.py sample_models/p4cnn.onnx --group p4 --screenshot /tmp/p4.png
    python benchmarks/render_html_in_chromium.py --result run.json --screenshot docs/report.png

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: standard library only):
Network events list what the page loads, and a script run in the page measures the drawn SVG. Needs
Debian's chromium (``apt-get install -y chromium``). Exit status 0 when every check passes.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--hide-scrollbars", "--mute-audio",
         "--remote-debugging-pipe",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]  # any network request fails at once

#: run in the page once it has loaded: what was drawn, and what the page itself says it loaded
PROBE = """(() => {
  const chart = document.querySelector('#layer-chart');
  const box = chart ? chart.getBoundingClientRect() : {width: 0, height: 0};
  const lines = [...document.querySelectorAll('#layer-chart polyline')].map(p => p.getBBox());
  const cells = [...document.querySelectorAll('#layer-heatmap rect.cell')];
  return JSON.stringify({
    verdict: document.querySelector('.verdict .word')?.textContent ?? null,
    chart_width: box.width, chart_height: box.height,
    polylines: lines.length, polylines_drawn: lines.filter(b => b.width > 0 && b.height >= 0).length,
    points: document.querySelectorAll('#layer-chart .point').length,
    tolerance_line: document.querySelector('#layer-chart line.tolerance')?.getBBox().width ?? 0,
    first_failing: document.querySelector('#layer-chart .first-label')?.textContent ?? null,
    heat_cells: cells.length, heat_cells_drawn: cells.filter(c => c.getBBox().width > 0).length,
    resources: performance.getEntriesByType('resource').map(e => e.name),
    external_scripts: document.querySelectorAll('script[src]').length,
    links: document.querySelectorAll('link').length,
    page_height: document.documentElement.scrollHeight,
  });
})()"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    return None


class DevTools:
    """The DevTools protocol over fds 3 (commands in) and 4 (replies out): NUL-terminated JSON."""

    def __init__(self, binary: str, profile: str, width: int, height: int) -> None:
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()

        def wire() -> None:
            low = [os.dup(to_child), os.dup(from_child)]  # out of the way of 3 and 4 before placing them
            # (subprocess closes every other fd after this runs: pass_fds keeps 3 and 4)
            os.dup2(low[0], 3)
            os.dup2(low[1], 4)

        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"],
            preexec_fn=wire, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self._buffer, self._next, self.events = b"", 0, []

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        self._next += 1
        message = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive(timeout)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict:
        for index, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(index)
        while True:
            event = self._receive(timeout)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def _receive(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._write)
        os.close(self._read)


def open_report(page: Path, screenshot: Path | None = None, width: int = 1280, height: int = 2000,
                binary: str | None = None) -> dict:
    """Load ``page`` in headless Chromium; return what the probe measured and every URL requested."""
    binary = binary or find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium on PATH: apt-get install -y chromium")
    url = page.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="eqcheck-chromium-") as profile:
        tools = DevTools(binary, profile, width, height)
        try:
            target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Network.enable", "Page.enable", "Runtime.enable"):
                tools.send(domain, session=session)
            tools.send("Emulation.setDeviceMetricsOverride",
                       {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
            tools.send("Page.navigate", {"url": url}, session)
            tools.wait_for("Page.loadEventFired")
            probe = tools.send("Runtime.evaluate", {"expression": PROBE, "returnByValue": True}, session)
            measured = json.loads(probe["result"]["value"])
            if screenshot is not None:
                shot = tools.send("Page.captureScreenshot", {"format": "png"}, session)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
            requested = [e["params"]["request"]["url"] for e in tools.events
                         if e.get("method") == "Network.requestWillBeSent"]
        finally:
            tools.close()
    measured["requests"] = requested
    measured["foreign_requests"] = [u for u in requested if u != url and not u.startswith(("data:", "about:"))]
    return measured


def problems(measured: dict, failing: bool) -> list[str]:
    """What is wrong with the rendered page ([] when it is right)."""
    found = []
    if measured["chart_width"] < 600 or measured["chart_height"] < 150:
        found.append(f"chart not laid out: {measured['chart_width']}x{measured['chart_height']} px")
    if not measured["polylines"] or measured["polylines_drawn"] != measured["polylines"]:
        found.append(f"polylines drawn: {measured['polylines_drawn']} of {measured['polylines']}")
    if measured["tolerance_line"] < 100:
        found.append("no tolerance line")
    if not measured["heat_cells"] or measured["heat_cells_drawn"] != measured["heat_cells"]:
        found.append(f"heat map cells drawn: {measured['heat_cells_drawn']} of {measured['heat_cells']}")
    if failing and not measured["first_failing"]:
        found.append("first failing layer not marked")
    if measured["foreign_requests"] or measured["resources"]:
        loaded = sorted(set(measured["foreign_requests"] + measured["resources"]))
        found.append(f"loads something besides the page: {loaded}")
    if measured["external_scripts"] or measured["links"]:
        found.append("has <script src> or <link>")
    return found


def _result(args: argparse.Namespace):
    from eqcheck.report.json_report import from_dict

    if args.result:
        return from_dict(json.loads(Path(args.result).read_text()))
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(folder) / "result.json"
        eqcheck = Path(sys.executable).parent / "eqcheck"
        command = [str(eqcheck), "verify", args.model, "--group", args.group, "--json", str(saved)]
        subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
        return from_dict(json.loads(saved.read_text()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="sample_models/p4cnn_broken.onnx")
    parser.add_argument("--group", default="p4")
    parser.add_argument("--result", help="a saved result (eqcheck verify --json) instead of a model")
    parser.add_argument("--html", type=Path, help="keep the rendered page here")
    parser.add_argument("--screenshot", type=Path, default=Path(tempfile.gettempdir()) / "eqcheck-report.png")
    parser.add_argument("--window", default="1280x2000")
    args = parser.parse_args()
    from eqcheck.report.html import render

    result = _result(args)
    width, height = (int(v) for v in args.window.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        page = args.html or Path(folder) / "report.html"
        page.write_text(render(result), encoding="utf-8")
        started = time.perf_counter()
        measured = open_report(page, args.screenshot, width, height)
    found = problems(measured, failing=not result.passed)
    summary = {k: v for k, v in measured.items() if k not in ("resources",)}
    print(json.dumps(summary, indent=2))
    print(f"page {page} ({len(render(result)) / 1024:.0f} KiB), screenshot {args.screenshot}, "
          f"{time.perf_counter() - started:.1f} s in chromium")
    for problem in found:
        print(f"PROBLEM: {problem}")
    print("OK: chart drawn, nothing loaded from the network" if not found else "FAILED")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
