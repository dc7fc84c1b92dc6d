"""A tiny, safe expression language for the command line: ``tanh(x*w + b)``.

>>> y = evaluate("tanh(x*w + b)", {"x": 2, "w": -3, "b": 6.88})
>>> round(y.data, 4), y.label
(0.7064, 'tanh(x*w + b)')
>>> parse("x.__class__")
Traceback (most recent call last):
...
tinygrad_edu.viz.expression.ExpressionError: column 2: attribute access (x.__class__) ...

Grammar: numbers, names, ``+ - * / **``, unary minus (and plus), parentheses, and calls of
the registry's elementwise functions (``exp``, ``log``, ``tanh``, ``relu``, ``sigmoid``,
``leaky_relu(x, alpha=0.2)``, ...).  The text is parsed with :mod:`ast` and every node is
checked against a whitelist; nothing is ever passed to ``eval``, ``exec`` or ``compile``.
Anything else (attribute access, subscripts, lambdas, comprehensions, imports, unknown
names or functions) raises :class:`ExpressionError`, naming the construct and its column.
"""

from __future__ import annotations

import ast
import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..autograd import ConstantLabel
from ..registry import REGISTRY, Op, Unary

__all__ = ["ExpressionError", "evaluate", "functions", "names", "parse"]

#: Longest accepted expression text and deepest nesting (keeps parsing and evaluation cheap).
MAX_LENGTH = 2000
MAX_DEPTH = 100

_BINOPS: dict[type, str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/",
                            ast.Pow: "**"}
_UNARYOPS: dict[type, str] = {ast.USub: "-", ast.UAdd: "+"}

#: What a rejected construct is called in the error message.
_DESCRIBE: dict[type, str] = {
    ast.Attribute: "attribute access", ast.Subscript: "subscript", ast.Lambda: "lambda",
    ast.ListComp: "list comprehension", ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension", ast.GeneratorExp: "generator expression",
    ast.Compare: "comparison", ast.BoolOp: "boolean operator", ast.IfExp: "conditional",
    ast.List: "list", ast.Tuple: "tuple", ast.Dict: "dict", ast.Set: "set",
    ast.JoinedStr: "f-string", ast.Starred: "starred argument", ast.NamedExpr: "assignment (:=)",
    ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "slice",
}


class ExpressionError(ValueError):
    """The expression is not valid in the language (or cannot be evaluated)."""

    def __init__(self, message: str, col: int | None = None, text: str = "") -> None:
        self.col = col
        self.reason = message
        if col is not None:
            message = f"column {col + 1}: {message}"
            if text and text.isprintable() and len(text) <= 120:
                message += f"\n  {text}\n  {' ' * col}^"
        super().__init__(message)


def functions() -> dict[str, Op]:
    """The functions an expression may call: the scalar elementwise (unary) registry ops."""
    return {name: op for name, op in REGISTRY.items() if isinstance(op, Unary) and op.scalar}


def _ast_parse(text: str, mode: str) -> ast.AST:
    """``ast.parse`` without Python's compile-time warnings (``1or x``: "invalid decimal
    literal"; ``'\\%'``: "invalid escape sequence", a DeprecationWarning before Python 3.12,
    a SyntaxWarning since): the user wrote an expression, not Python, and what is wrong with
    it is said by our own errors, never as a warning line about ``<unknown>``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return ast.parse(text, mode=mode)


def _statement_error(text: str) -> ExpressionError:
    """Parse as a full module to name statements such as ``import os`` in the error."""
    try:
        module = _ast_parse(text, "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ExpressionError("invalid syntax")
    for stmt in module.body:
        if not isinstance(stmt, ast.Expr):
            kind = type(stmt).__name__.lower()
            what = {"import": "import", "importfrom": "import", "assign": "assignment"}.get(
                kind, f"statement ({kind})")
            return ExpressionError(f"{what} is not allowed: only an expression is",
                                   stmt.col_offset, text)
    return ExpressionError("only a single expression is allowed")


def _syntax_error(exc: SyntaxError, text: str) -> ExpressionError:
    col = None
    if exc.lineno in (None, 1):
        col = exc.offset - 1 if exc.offset else len(text)
        col = min(max(col, 0), len(text))
    detail = "" if exc.msg == "invalid syntax" else f" ({exc.msg})"
    return ExpressionError(f"invalid syntax{detail}", col, text)


def parse(text: str) -> ast.Expression:
    """Parse and validate ``text``; the returned tree contains only whitelisted nodes."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression too long ({len(text)} > {MAX_LENGTH} characters)")
    if not text.strip():
        raise ExpressionError("empty expression")
    text = text.strip()
    try:
        tree = _ast_parse(text, "eval")
    except SyntaxError as exc:
        statement = _statement_error(text)
        raise (statement if statement.col is not None else _syntax_error(exc, text)) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"cannot parse the expression ({type(exc).__name__})") from None
    _Validator(text).check(tree.body, 0)
    return tree


class _Validator:
    """Walks a parsed tree and rejects anything outside the whitelist."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.funcs = functions()

    def fail(self, message: str, node: ast.AST) -> ExpressionError:
        col = getattr(node, "col_offset", None)
        if isinstance(node, (ast.Attribute, ast.Subscript)):  # point at ".name" or "["
            col = node.value.end_col_offset
        return ExpressionError(message, col, self.text)

    def check(self, node: ast.AST, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise self.fail(f"expression nested too deeply (more than {MAX_DEPTH} levels)", node)
        if isinstance(node, ast.Constant):
            self.check_number(node)
        elif isinstance(node, ast.Name):
            if node.id in self.funcs:
                raise self.fail(f"{node.id!r} is a function: call it, as {node.id}(x)", node)
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            self.check(node.left, depth + 1)
            self.check(node.right, depth + 1)
        elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARYOPS:
            self.check(node.operand, depth + 1)
        elif isinstance(node, ast.Call):
            self.check_call(node, depth)
        else:
            raise self.fail(f"{self.describe(node)} is not allowed", node)

    def describe(self, node: ast.AST) -> str:
        name = _DESCRIBE.get(type(node))
        if isinstance(node, (ast.BinOp, ast.UnaryOp)):
            name = f"operator {type(node.op).__name__}"
        name = name or type(node).__name__
        try:
            segment = ast.get_source_segment(self.text, node)
        except (IndexError, ValueError):  # pragma: no cover - defensive
            segment = None
        return f"{name} ({segment})" if segment and len(segment) <= 40 else name

    def check_number(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"constant {value!r} is not allowed: only numbers are", node)
        try:
            finite = math.isfinite(float(value))
        except OverflowError:  # an int beyond float's range, e.g. 401 digits
            finite = False
        if not finite:
            shown = repr(value) if len(repr(value)) <= 24 else f"{repr(value)[:12]}..."
            raise self.fail(f"constant {shown} is not a finite number", node)

    def check_call(self, node: ast.Call, depth: int) -> None:
        func = node.func
        if not isinstance(func, ast.Name):
            raise self.fail(f"{self.describe(func)} is not allowed as a function", func)
        op = self.funcs.get(func.id)
        if op is None:
            raise self.fail(f"unknown function {func.id!r}; known: "
                            + ", ".join(sorted(self.funcs)), func)
        if not node.args:
            raise self.fail(f"{func.id}() needs an argument", node)
        self.check(node.args[0], depth + 1)
        extra = node.args[1:]
        if len(extra) > len(op.params):
            raise self.fail(f"{func.id} takes 1 input and parameters {list(op.params)}", node)
        for arg in extra:
            self.check_param(arg, func.id)
        for kw in node.keywords:
            if kw.arg is None or kw.arg not in op.params:
                raise self.fail(f"{func.id} has no parameter {kw.arg!r} (has "
                                f"{list(op.params)})", kw.value)
            self.check_param(kw.value, func.id)

    def check_param(self, node: ast.AST, fname: str) -> None:
        """Parameters are constants: a number (possibly negated) or a string."""
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARYOPS:
            node = node.operand
            if not isinstance(node, ast.Constant) or isinstance(node.value, str):
                raise self.fail(f"a parameter of {fname} must be a constant number", node)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return
        if not isinstance(node, ast.Constant):
            raise self.fail(f"a parameter of {fname} must be a constant", node)
        self.check_number(node)


def names(tree: ast.Expression | str) -> list[str]:
    """The variable names an expression uses, in order of first appearance."""
    if isinstance(tree, str):
        tree = parse(tree)
    seen: dict[str, None] = {}
    stack: list[ast.AST] = [tree.body]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Call):
            stack.extend(reversed(node.args[:1]))
            continue
        if isinstance(node, ast.Name):
            seen.setdefault(node.id, None)
        stack.extend(reversed(list(ast.iter_child_nodes(node))))
    return list(seen)


def _constant(node: ast.AST) -> Any:
    """The value of a validated parameter or exponent constant."""
    if isinstance(node, ast.UnaryOp):
        value = _constant(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    return node.value  # type: ignore[attr-defined]


def _is_number(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp):
        return _is_number(node.operand)
    return isinstance(node, ast.Constant)


class _Builder:
    """Evaluates a validated tree into a graph of engine nodes, labelling them by source."""

    def __init__(self, text: str, env: Mapping[str, Any], engine: type, label_limit: int):
        self.text, self.env, self.engine, self.limit = text, env, engine, label_limit
        self.funcs = functions()

    def label(self, value: Any, node: ast.AST) -> Any:
        if not value.label:
            segment = ast.get_source_segment(self.text, node) or ""
            if len(segment) <= self.limit:
                value.label = segment
        return value

    def build(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return self.engine(float(node.value), label=ConstantLabel(repr(node.value)))
        if isinstance(node, ast.Name):
            return self.env[node.id]
        if isinstance(node, ast.BinOp):
            out = self.binop(node)
        elif isinstance(node, ast.UnaryOp):
            out = self.unary(node)
        else:
            out = self.call(node)  # type: ignore[arg-type]
        return self.label(out, node)

    def binop(self, node: ast.BinOp) -> Any:
        left = self.build(node.left)
        if isinstance(node.op, ast.Pow) and _is_number(node.right):
            return left ** float(_constant(node.right))  # x ** 2: constant exponent
        right = self.build(node.right)
        op = type(node.op)
        if op is ast.Add:
            return left + right
        if op is ast.Sub:
            return left - right
        if op is ast.Mult:
            return left * right
        if op is ast.Div:
            return left / right
        return left**right

    def unary(self, node: ast.UnaryOp) -> Any:
        operand = self.build(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand

    def call(self, node: ast.Call) -> Any:
        op = self.funcs[node.func.id]  # type: ignore[attr-defined]
        x = self.build(node.args[0])
        params = {name: _constant(arg) for name, arg in zip(op.params, node.args[1:])}
        params.update({kw.arg: _constant(kw.value) for kw in node.keywords})
        return op(x, **params) if params else op(x)


def evaluate(text: str, values: Mapping[str, Any], engine: type | None = None,
             label_limit: int = 16) -> Any:
    """Build the expression's graph from named inputs and return its output node.

    ``values`` maps every name to a number (or to an existing node, used as is); numbers
    become labelled leaves of ``engine`` (default :class:`~tinygrad_edu.Value`).
    Intermediate nodes are labelled by their source text when it is at most
    ``label_limit`` characters long.  Missing or extra names raise :class:`ExpressionError`.
    """
    from ..autograd import Node
    from ..value import Value

    engine = engine or Value
    tree = parse(text)
    wanted = names(tree)
    missing = [n for n in wanted if n not in values]
    extra = [n for n in values if n not in wanted]
    if missing:
        raise ExpressionError(f"no value given for {', '.join(missing)} (use --set "
                              + " ".join(f"{n}=..." for n in missing) + ")")
    if extra:
        raise ExpressionError(f"the expression does not use {', '.join(extra)}")
    env = {k: v if isinstance(v, Node) else engine(v, label=k) for k, v in values.items()}
    try:  # a pole (1/0) is an error here, not the engines' IEEE inf (FloatingPointError)
        with np.errstate(divide="raise", invalid="raise", over="raise"):
            return _Builder(text.strip(), env, engine, label_limit).build(tree.body)
    except (ArithmeticError, ValueError, TypeError) as exc:
        raise ExpressionError(f"cannot evaluate {text.strip()!r}: {exc}") from None
