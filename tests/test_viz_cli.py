"""``tinygrad-edu explain`` and ``tinygrad-edu graph``: output, files, and exit codes."""

from __future__ import annotations

import json
import os
import re

import pytest

from tinygrad_edu.cli import main
from tinygrad_edu.cli.graph import UsageError, parse_assignments
from tinygrad_edu.registry import Unary, activation_ops
from tinygrad_edu.viz import dot_available


def require_dot() -> None:
    if not dot_available():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Graphviz `dot` is missing in CI (.ci/run installs it)")
        pytest.skip("Graphviz `dot` not installed")


def test_explain_prints_the_steps(capsys) -> None:
    assert main(["explain", "tanh(x*w + b)", "--set", "x=2", "w=-3", "b=6.88"]) == 0
    out = capsys.readouterr().out
    assert "5 steps" in out
    assert re.search(r"x\*w → x\s+×\s+0\.501\s+×\s+-3\s+=\s+-1\.503\s+x\.grad = -1\.503", out)
    assert "∂/∂(x*w + b) = 1 − tanh(x*w + b)²" in out  # f'(x) = 1 − y², filled with names
    assert "∂/∂x = w" in out and "∂/∂(x*w) = 1" in out  # never a generic ∂f/∂a


def test_explain_writes_stepper_svg_and_json(tmp_path, capsys) -> None:
    require_dot()
    html, svg, js = tmp_path / "s.html", tmp_path / "g.svg", tmp_path / "s.json"
    code = main(["explain", "tanh(x*w + b)", "--set", "x=2,w=-3,b=6.88", "--html", str(html),
                 "--svg", str(svg), "--json", str(js)])
    assert code == 0
    assert "<svg" in html.read_text() and 'id="steps-data"' in html.read_text()
    assert "<svg" in svg.read_text()
    assert len(json.loads(js.read_text())["steps"]) == 5
    assert f"wrote {html}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["explain", "x*w", "--set", "x=1"], "no value given for w"),
        (["explain", "x*2", "--set", "x=1", "y=2"], "does not use y"),
        (["explain", "x.real", "--set", "x=1"], "attribute access"),
        (["explain", "x*2", "--set", "x=abc"], "is not a number"),
        (["explain", "x*2", "--set", "x"], "NAME=NUMBER"),
        (["explain", "log(x)", "--set", "x=-1"], "cannot evaluate"),
        (["graph"], "name an example"),
        (["graph", "expr"], "needs --expr"),
        (["graph", "neuron", "--expr", "x"], "go with the 'expr' example"),
        (["graph", "neuron", "-o", "out.bmp"], "unknown output format"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(argv, message, capsys, tmp_path,
                                                monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_parse_assignments() -> None:
    assert parse_assignments(["x=2", "w=-3,b=6.88"]) == {"x": 2.0, "w": -3.0, "b": 6.88}
    with pytest.raises(UsageError):
        parse_assignments(["1x=2"])


@pytest.mark.parametrize("example", ["neuron", "mlp"])
def test_graph_examples_to_svg_png_and_dot(example, tmp_path) -> None:
    assert main(["graph", example, "-o", str(tmp_path / "g.dot")]) == 0
    assert "∂/∂" in (tmp_path / "g.dot").read_text()
    require_dot()
    assert main(["graph", example, "-o", str(tmp_path / "g.svg")]) == 0
    assert "<svg" in (tmp_path / "g.svg").read_text()
    assert main(["graph", example, "-o", str(tmp_path / "g.png"), "--rankdir", "TB"]) == 0
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_graph_expr_to_stdout(capsys) -> None:
    assert main(["graph", "expr", "--expr", "sigmoid(x) * x", "--set", "x=1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digraph") and "sigmoid(x)" in out and "∂/∂x" in out
    assert main(["graph", "expr", "--expr", "x * 3", "--set", "x=1", "--no-backward"]) == 0
    assert "∂/∂" not in capsys.readouterr().out


def test_graph_layer_view_of_a_training_step(tmp_path) -> None:
    assert main(["graph", "mnist-mlp", "-o", str(tmp_path / "m.dot")]) == 0
    assert "Linear(784, 256)" in (tmp_path / "m.dot").read_text()


def test_activation_gallery_plots_every_activation(tmp_path, capsys) -> None:
    out = tmp_path / "gallery.html"
    assert main(["graph", "--activations", str(out)]) == 0
    page = out.read_text()
    elementwise = [op for op in activation_ops() if isinstance(op, Unary)]
    assert page.count("<svg") == len(elementwise) >= 10
    for op in activation_ops():
        assert f'id="{op.name}"' in page
    # real axes (matplotlib): every plot has y ticks at 0 and ±1, each curve and a legend
    for op in elementwise:
        card = page.split(f'id="{op.name}"', 1)[1].split("</section>", 1)[0]
        yticks = re.findall(r'<g id="ytick_\d+">.*?<text[^>]*>([^<]*)</text>', card, re.DOTALL)
        assert {"−1", "0", "1"} <= {t.replace("−1.0", "−1").replace("1.0", "1")
                                     .replace("0.0", "0") for t in yticks}, (op.name, yticks)
        assert "f(x)" in card and "f′(x)" in card
        assert "``" not in card  # docstrings' RST backticks become <code>
    assert "<code>axis</code>" in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # self-contained: loads nothing


def test_graph_without_dot_exits_1_with_install_hint(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["graph", "neuron", "-o", str(tmp_path / "g.svg")]) == 1
    assert "apt-get install graphviz" in capsys.readouterr().err
    assert main(["explain", "x*2", "--set", "x=1", "--html", str(tmp_path / "s.html")]) == 1
    assert main(["graph", "neuron", "-o", str(tmp_path / "g.dot")]) == 0  # DOT needs no dot


def test_graph_into_a_closed_pipe_exits_quietly(monkeypatch, capsys) -> None:
    """`tinygrad-edu graph mlp | head`: the reader closes the pipe early; no "Broken pipe"."""
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone: every write fails with EPIPE
    closed = open(write_end, "w", buffering=1, encoding="utf-8")  # noqa: SIM115 - a stdout
    monkeypatch.setattr(sys, "stdout", closed)
    try:
        assert main(["graph", "mlp"]) == 0
    finally:
        monkeypatch.undo()
        try:
            closed.close()
        except BrokenPipeError:
            pass
    assert capsys.readouterr().err == ""


def test_mlp_example_graph_fits_a_screen_width(tmp_path) -> None:
    """Measured: left to right it was 2,858 pt = 3,810 px wide; top to bottom 1,157 px."""
    require_dot()
    out = tmp_path / "mlp.svg"
    assert main(["graph", "mlp", "-o", str(out)]) == 0
    width_pt = float(re.search(r'<svg width="([\d.]+)pt"', out.read_text()).group(1))
    assert width_pt * 96 / 72 <= 1280  # px at 96 dpi: a laptop screen
    assert "rankdir=TB" in (main(["graph", "mlp", "-o", str(tmp_path / "m.dot")]) == 0
                            and (tmp_path / "m.dot").read_text())
