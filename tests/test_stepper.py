"""The HTML stepper: one self-contained file, driven in headless Chromium with real clicks.

Chromium is controlled through the Chrome DevTools Protocol over ``--remote-debugging-pipe``
(a tiny client below, stdlib only): the test clicks the Next button with genuine mouse
events and reads what the page shows."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinygrad_edu import Tensor
from tinygrad_edu.viz import (
    dot_available,
    examples,
    explain_backward,
    stepper_html,
    write_stepper_html,
)
from tinygrad_edu.viz.stepper import step_lines

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-pipe", "--window-size=1280,900",
]


def _require(tool: str, available: bool) -> None:
    if not available:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{tool} is missing in CI (.ci/run installs it)")
        pytest.skip(f"{tool} not installed")


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


_TRAMPOLINE = """
import fcntl, os, sys
# first copy both ends above 9, out of the way of fds 3 and 4 (dup2 onto itself would keep
# the close-on-exec flag), then place them; dup2 makes the copies inheritable
read_end, write_end = (fcntl.fcntl(int(fd), fcntl.F_DUPFD_CLOEXEC, 10) for fd in sys.argv[1:3])
os.dup2(read_end, 3)
os.dup2(write_end, 4)
os.execv(sys.argv[3], sys.argv[3:])
"""


class DevTools:
    """A minimal CDP client over Chromium's pipe (fd 3: commands in, fd 4: replies out)."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_chrome_r, self._out = os.pipe()
        self._in, from_chrome_w = os.pipe()

        # a small Python trampoline moves the pipe ends to fds 3 and 4, then becomes Chromium
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _TRAMPOLINE, str(to_chrome_r), str(from_chrome_w),
             executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(to_chrome_r, from_chrome_w), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from Chromium")
            ready, _, _ = select.select([self._in], [], [], left)
            if ready:
                chunk = os.read(self._in, 1 << 16)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, timeout: float = 20.0,
             session: bool = True) -> dict:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.send("Target.attachToTarget",
                             {"targetId": target["targetId"], "flatten": True}, session=False)
        self.session = attached["sessionId"]
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + 20
        while self.js("document.readyState") != "complete" or not self.js(
            "!!document.getElementById('counter').textContent"
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("page did not load")
            time.sleep(0.05)

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate",
                           {"expression": expression, "returnByValue": True})
        return result["result"].get("value")

    def click(self, element_id: str) -> None:
        """A real mouse click at the centre of the element."""
        rect = f"document.getElementById('{element_id}').getBoundingClientRect()"
        box = self.js(f"(r => [r.x + r.width / 2, r.y + r.height / 2])({rect})")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1],
                                                   "button": "left", "clickCount": 1})

    def key(self, key: str, code: int) -> None:
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": key,
                                                 "windowsVirtualKeyCode": code})

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._in)
        os.close(self._out)


@pytest.fixture(scope="module")
def neuron_page(tmp_path_factory) -> tuple[Path, Any]:
    _require("Graphviz `dot`", dot_available())
    trace = explain_backward(examples.neuron(backward=False), print_steps=False)
    path = write_stepper_html(trace, tmp_path_factory.mktemp("stepper") / "steps.html")
    return path, trace


@pytest.fixture(scope="module")
def browser(tmp_path_factory, neuron_page):
    executable = chromium_path()
    _require("Chromium", executable is not None)
    devtools = DevTools(executable, tmp_path_factory.mktemp("chromium-profile"))
    try:
        devtools.open(neuron_page[0].as_uri())
        yield devtools
    finally:
        devtools.close()


def test_page_is_self_contained(neuron_page) -> None:
    html = neuron_page[0].read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html
    assert not re.search(r"<script[^>]+src=|<link|@import|url\(", html, re.IGNORECASE)
    urls = set(re.findall(r"https?://[^\s\"'<>]+", html))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    steps = json.loads(re.search(r'id="steps-data">(.*?)</script>', html, re.DOTALL).group(1))
    assert len(steps) == len(neuron_page[1].steps) == 9
    for step in steps:  # every step's edge and nodes exist in the embedded SVG
        for key in ("edge", "node", "op", "parent"):
            assert f'id="{step[key]}"' in html


def test_step_arithmetic_lines() -> None:
    trace = explain_backward(examples.neuron(backward=False), print_steps=False)
    lines = step_lines(trace.steps[0], trace.root_name)
    assert lines == [
        "upstream   ∂o/∂o = 1",
        "local      ∂o/∂n = 1 − o² = 0.5   [tanh]",  # the formula's y is this node, o
        "product    1 × 0.5 = 0.5",
        "total      n.grad = 0 + 0.5 = 0.5",
    ]
    x1 = next(s for s in trace.steps if s.parent == "x1")
    assert step_lines(x1, "o")[1] == "local      ∂(x1·w1)/∂x1 = w1 = -3   [mul]"


def test_tensor_trace_page_shows_reduction(tmp_path) -> None:
    _require("Graphviz `dot`", dot_available())
    x = Tensor(np.ones((32, 10), np.float32), label="x")
    b = Tensor(np.zeros(10, np.float32), requires_grad=True, label="b")
    loss = (x + b).sum()
    loss.label = "loss"
    html = stepper_html(explain_backward(loss, print_steps=False))
    assert "(32, 10) summed over axis 0 → (10,)" in html


def _state(browser: DevTools) -> dict:
    return browser.js("""(() => ({
        step: document.getElementById('stepper').dataset.step,
        title: document.getElementById('title').textContent,
        text: document.getElementById('arithmetic').textContent,
        counter: document.getElementById('counter').textContent,
        edge: Array.from(document.querySelectorAll('g.hl-edge')).map(g => g.id),
        parent: Array.from(document.querySelectorAll('g.hl-parent')).map(g => g.id),
        done: document.querySelectorAll('g.done').length,
        row: Array.from(document.querySelectorAll('tr.current')).map(r => r.dataset.step),
    }))()""")


@pytest.mark.parametrize("clicks", [1, 4, 9])
def test_clicking_next_n_times_shows_step_n(browser, neuron_page, clicks) -> None:
    trace = neuron_page[1]
    browser.click("first")
    assert _state(browser)["step"] == "0"
    for _ in range(clicks):
        browser.click("next")
    state = _state(browser)
    step = trace.steps[clicks - 1]
    assert state["step"] == str(clicks)
    assert state["counter"] == f"step {clicks} / {len(trace.steps)}"
    assert state["title"].startswith(f"Step {clicks}: {step.node} → {step.parent}")
    assert state["edge"] == [step.edge_id] and state["parent"] == [step.parent_id]
    assert state["done"] == clicks - 1
    assert state["row"] == [str(clicks)]
    assert state["text"].splitlines() == step_lines(step, trace.root_name)


def test_prev_button_arrow_keys_and_grad_fields(browser, neuron_page) -> None:
    trace = neuron_page[1]
    browser.click("first")
    browser.key("ArrowRight", 39)
    browser.key("ArrowRight", 39)
    assert _state(browser)["step"] == "2"
    browser.click("prev")
    assert _state(browser)["step"] == "1"
    browser.key("ArrowLeft", 37)
    assert _state(browser)["step"] == "0"
    browser.click("prev")  # disabled at the start: stays
    assert _state(browser)["step"] == "0"
    # the grad fields fill in as the steps run: x1's grad appears at its step
    x1_step = next(s for s in trace.steps if s.parent == "x1")
    grad_of_x1 = ("Array.from(document.getElementById('" + x1_step.parent_id +
                  "').querySelectorAll('text')).map(t => t.textContent)"
                  ".find(t => t.startsWith('grad '))")
    assert browser.js(grad_of_x1) == "grad 0"
    browser.click("last")
    assert _state(browser)["step"] == str(len(trace.steps))
    assert browser.js(grad_of_x1) == "grad -1.5"
