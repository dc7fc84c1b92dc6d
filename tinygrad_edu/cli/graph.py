"""``tinygrad-edu explain`` and ``tinygrad-edu graph``: backprop step by step, and its graphs.

``tinygrad-edu explain "tanh(x*w + b)" --set x=2 w=-3 b=6.88 --html steps.html --svg g.svg``
prints the backward pass step by step and writes the stepper page and the graph.
``tinygrad-edu graph neuron -o neuron.svg`` renders a built-in example (``neuron``, ``mlp``,
``expr``, and the layer view of one training step: ``mnist-mlp``, ``mnist-cnn``);
``tinygrad-edu graph --activations gallery.html`` writes the activation gallery.
``tinygrad-edu graph --order 2 "tanh(x)"`` draws the graph of f′ (the backward pass of
tanh recorded with ``create_graph=True``; its own backward gives f″).
Exit codes: 0 done, 1 rendering impossible (no Graphviz), 2 bad input.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

from ..higher_order import grad
from ..viz import examples
from ..viz.explain import explain_backward
from ..viz.expression import ExpressionError, evaluate, names, parse
from ..viz.graph import GraphvizNotFound, draw_graph, save
from ..viz.plot import write_activation_gallery
from ..viz.stepper import write_stepper_html
from .common import MAX_NUMBER_TEXT, UsageError, check_output_path, fail, one_line

__all__ = ["UsageError", "parse_assignments", "register_cli", "run_explain", "run_graph"]

EXAMPLES = ("neuron", "mlp", "expr", "mnist-mlp", "mnist-cnn")


def parse_assignments(items: Sequence[str] | None) -> dict[str, float]:
    """``["x=2", "w=-3,b=6.88"]`` -> ``{"x": 2.0, "w": -3.0, "b": 6.88}``.

    A name given twice, a value that is not a short finite number, or an item without
    ``=`` is a :class:`UsageError` naming it.
    """
    values: dict[str, float] = {}
    for item in items or ():
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, text = part.partition("=")
            name = name.strip()
            if not sep or not name.isidentifier():
                raise UsageError(f"--set expects NAME=NUMBER, got {part!r}")
            if name in values:
                raise UsageError(f"--set {name} given twice ({name}={values[name]:g} and "
                                 f"{part})")
            text = text.strip()
            if len(text) > MAX_NUMBER_TEXT:
                raise UsageError(f"--set {name}: {text[:12]!r}... ({len(text)} characters) "
                                 "is not a usable number")
            try:
                value = float(text)
            except ValueError:
                raise UsageError(f"--set {name}: {text!r} is not a number") from None
            if not math.isfinite(value):
                raise UsageError(f"--set {name}: {text!r} is not a finite number")
            values[name] = value
    return values


def _add_set_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                        help='values of the names, "x=2 w=-3" or "x=2,w=-3"')


def register_cli(subparsers: Any) -> None:
    """Add ``explain`` and ``graph`` to the ``tinygrad-edu`` command."""
    explain = subparsers.add_parser(
        "explain", help="show the backward pass of an expression step by step",
        description="Build the expression's graph, run backward and print every step "
                    "(upstream × local = contribution, and the running totals).")
    explain.add_argument("expression", help='e.g. "tanh(x*w + b)"')
    _add_set_option(explain)
    explain.add_argument("--html", metavar="PATH", help="write the interactive stepper page")
    explain.add_argument("--svg", metavar="PATH", help="write the graph (.svg/.png/.pdf/.dot)")
    explain.add_argument("--json", metavar="PATH", help="write the steps as JSON")
    explain.set_defaults(func=run_explain)

    graph = subparsers.add_parser(
        "graph", help="render a computation graph (built-in example or expression)",
        description="Render a built-in example's computation graph, or the activation "
                    "gallery.")
    graph.add_argument("example", nargs="?",
                       help="neuron (Values), mlp (Tensors), expr (--expr), or the layer "
                            "view of one training step: mnist-mlp, mnist-cnn; or an "
                            'expression such as "tanh(x)" (unset names are 0.5)')
    graph.add_argument("--order", type=int, default=1, metavar="N",
                       help="draw the graph of the (N−1)-th derivative of the expression "
                            "with respect to its first name (2: the graph of f′)")
    graph.add_argument("--expr", help="the expression for the 'expr' example")
    _add_set_option(graph)
    graph.add_argument("-o", "--output", metavar="PATH",
                       help="output file: .svg .png .pdf or .dot (default: DOT to stdout)")
    graph.add_argument("--no-backward", action="store_true",
                       help="draw before backward (no gradients)")
    graph.add_argument("--rankdir", choices=("LR", "TB"), default=None,
                       help="layout direction (default: TB for mlp, whose tensor records "
                            "are wide, so it fits a screen; LR otherwise)")
    graph.add_argument("--activations", metavar="PATH",
                       help="write the activation gallery (HTML) to PATH")
    graph.set_defaults(func=run_graph)


def run_explain(args: argparse.Namespace) -> int:
    """``tinygrad-edu explain``: print the steps; write --html/--svg/--json if asked."""
    try:
        for option in ("svg", "html", "json"):
            if getattr(args, option):
                check_output_path(getattr(args, option), f"--{option}")
        root = evaluate(args.expression, parse_assignments(args.set))
    except (UsageError, ExpressionError) as exc:
        return fail(str(exc), code=2)
    try:
        trace = explain_backward(root, print_steps=True)
    except ArithmeticError as exc:
        return fail(f"the backward pass of {args.expression!r} failed: "
                    f"{type(exc).__name__}: {one_line(exc)}", "explain")
    try:
        if args.svg:
            print(f"wrote {save(draw_graph(root), args.svg)}")
        if args.html:
            print(f"wrote {write_stepper_html(trace, args.html)}")
    except GraphvizNotFound as exc:
        return fail(str(exc), code=1)
    except (ValueError, OSError) as exc:
        return fail(str(exc), code=2)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(trace.to_json())
        print(f"wrote {args.json}")
    return 0


def _example_graph(args: argparse.Namespace) -> Any:
    """The Digraph of the chosen example."""
    if args.example not in EXAMPLES:
        return _derivative_graph(args)
    if args.order != 1:
        raise UsageError("--order goes with an expression, e.g. graph --order 2 'tanh(x)'")
    if args.example in ("mnist-mlp", "mnist-cnn"):
        return examples.network_step(args.example.split("-")[1])
    if args.example == "expr":
        if not args.expr:
            raise UsageError("the 'expr' example needs --expr, e.g. --expr 'tanh(x*w + b)'")
        root = evaluate(args.expr, parse_assignments(args.set))
        if not args.no_backward:
            root.backward()
    elif args.expr or args.set:
        raise UsageError("--expr and --set go with the 'expr' example")
    else:
        make = examples.neuron if args.example == "neuron" else examples.mlp
        root = make(backward=not args.no_backward)
    return draw_graph(root, rankdir=args.rankdir or examples.RANKDIR.get(args.example, "LR"))


def _derivative_graph(args: argparse.Namespace) -> Any:
    """The graph of the expression's (order − 1)-th derivative w.r.t. its first name, drawn
    with the forward graph marked; after its backward the name's .grad is the next one."""
    if args.order < 1:
        raise UsageError(f"--order must be >= 1, got {args.order}")
    if not any(c in args.example for c in "()+-*/"):
        raise UsageError(f"unknown example {args.example!r} (choose from "
                         f"{', '.join(EXAMPLES)}, or give an expression like 'tanh(x)')")
    wanted = names(parse(args.example))
    values = {n: 0.5 for n in wanted} | parse_assignments(args.set)
    f = evaluate(args.example, values)
    x = next(n for n in f.topological_order() if n.is_leaf and n.label == wanted[0])
    node = f
    for k in range(1, args.order):
        (node,) = grad(node, x, create_graph=True)
        node.label = f"d{k if k > 1 else ''}f/dx{k if k > 1 else ''}".replace("x", wanted[0])
    if not args.no_backward:
        node.backward()
    title = f"f = {args.example}" if args.order == 1 else \
        f"the graph of the derivative of order {args.order - 1} of f = {args.example}"
    return draw_graph(node, rankdir=args.rankdir, title=title,
                      forward=f if args.order > 1 else None)


def run_graph(args: argparse.Namespace) -> int:
    """``tinygrad-edu graph``: render an example, or write the activation gallery."""
    try:
        for option, value in (("--activations", args.activations), ("-o", args.output)):
            if value:
                check_output_path(value, option)
    except UsageError as exc:
        return fail(str(exc), code=2)
    if args.activations:
        print(f"wrote {write_activation_gallery(args.activations)}")
        if not args.example:
            return 0
    if not args.example:
        return fail(f"name an example ({', '.join(EXAMPLES)}) or use --activations PATH",
                    code=2)
    try:
        dot = _example_graph(args)
        if args.output:
            print(f"wrote {save(dot, args.output)}")
        else:
            print(dot.source)
    except (UsageError, ExpressionError) as exc:
        return fail(str(exc), code=2)
    except GraphvizNotFound as exc:
        return fail(str(exc), code=1)
    except BrokenPipeError:  # `| head` closed stdout: main() exits quietly
        raise
    except ArithmeticError as exc:
        return fail(f"the backward pass failed: {type(exc).__name__}: {one_line(exc)}", "graph")
    except (ValueError, OSError) as exc:
        return fail(str(exc), code=2)
    return 0
