"""The CLI's expression language: a whitelist over Python's ast, never eval.

Junk never crashes with anything but ExpressionError; valid expressions evaluate to the same
number as a reference computed here with the math module."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu import Value
from tinygrad_edu.viz import expression
from tinygrad_edu.viz.expression import ExpressionError, evaluate, names, parse


@pytest.mark.parametrize(
    ("text", "what", "column"),
    [
        ("x.__class__", "attribute access", 2),
        ("tanh(x).real + 1", "attribute access", 8),
        ("import os", "import", 1),
        ("__import__('os')", "unknown function '__import__'", 1),
        ("lambda: 1", "lambda", 1),
        ("x[0]", "subscript", 2),
        ("[a for a in b]", "list comprehension", 1),
        ("sum(i for i in x)", "unknown function 'sum'", 1),
        ("{a: 1 for a in b}", "dict comprehension", 1),
        ("foo(x)", "unknown function 'foo'", 1),
        ("x + 'a'", "constant 'a'", 5),
        ("x if y else z", "conditional", 1),
        ("x < y", "comparison", 1),
        ("x @ y", "operator MatMult", 1),
        ("x // 2", "operator FloorDiv", 1),
        ("(1, 2)", "tuple", 1),
        ("x = 1", "assignment", 1),
        ("exp", "'exp' is a function", 1),
        ("exp(x, 2)", "exp takes 1 input", 1),
        ("leaky_relu(x, beta=2)", "no parameter 'beta'", 20),
        ("leaky_relu(x, alpha=y)", "must be a constant", 21),
        ("tanh()", "needs an argument", 1),
        ("(x)(1)", "unknown function 'x'", 2),
        ("x.y(1)", "attribute access", 2),
        ("tanh(x) +", "invalid syntax", 10),
        ("1e999 * x", "not a finite number", 1),
        ("True * x", "constant True", 1),
        ("f'{x}'", "f-string", 1),
    ],
)
def test_rejects_with_construct_and_column(text: str, what: str, column: int) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    message = str(info.value)
    assert what in message
    assert message.startswith(f"column {column}:")
    assert info.value.col == column - 1


def test_unknown_and_extra_names_on_evaluation() -> None:
    with pytest.raises(ExpressionError, match="no value given for w"):
        evaluate("x * w", {"x": 1.0})
    with pytest.raises(ExpressionError, match="does not use z"):
        evaluate("x * 2", {"x": 1.0, "z": 3.0})


def test_math_errors_become_expression_errors() -> None:
    with pytest.raises(ExpressionError, match="cannot evaluate"):
        evaluate("log(x)", {"x": -1.0})
    with pytest.raises(ExpressionError, match="cannot evaluate"):
        evaluate("1 / x", {"x": 0.0})


def test_too_long_or_too_deep_is_refused_cleanly() -> None:
    with pytest.raises(ExpressionError, match="too long"):
        parse("x+" * 2000 + "x")
    with pytest.raises(ExpressionError):
        parse("-" * 1500 + "x")
    with pytest.raises(ExpressionError):
        parse("(" * 300 + "x" + ")" * 300)


def test_source_never_evaluates_code() -> None:
    source = Path(expression.__file__).read_text()
    assert not re.search(r"\b(eval|exec|compile)\s*\(", source)
    assert "__import__" not in source and "getattr(" not in source.replace(
        'getattr(node, "col_offset", None)', "")


def test_evaluate_builds_a_labelled_graph() -> None:
    y = evaluate("tanh(x*w + b)", {"x": 2, "w": -3, "b": 6.88})
    assert y.data == pytest.approx(math.tanh(2 * -3 + 6.88))
    assert y.label == "tanh(x*w + b)"
    labels = {n.label for n in y.topological_order()}
    assert {"x", "w", "b", "x*w", "x*w + b"} <= labels
    y.backward()
    x = next(n for n in y.topological_order() if n.label == "x")
    assert x.grad == pytest.approx(-3 * (1 - y.data**2))


def test_calls_with_parameters_and_constant_powers() -> None:
    assert evaluate("leaky_relu(x, alpha=0.2)", {"x": -2}).data == pytest.approx(-0.4)
    assert evaluate("leaky_relu(x, 0.3)", {"x": -2}).data == pytest.approx(-0.6)
    assert evaluate("elu(x, alpha=2)", {"x": -1}).data \
        == pytest.approx(2 * (math.exp(-1) - 1))
    gelu = evaluate('gelu(x, approximate="tanh")', {"x": 1.0}).data
    assert gelu == pytest.approx(0.8412, abs=1e-4)
    y = evaluate("x ** 2 + x ** -1", {"x": 2})
    assert y.data == pytest.approx(4.5)
    assert {n.op.name for n in y.topological_order() if n.op} == {"pow_const", "add"}
    assert evaluate("2 ** x", {"x": 3}).data == pytest.approx(8.0)
    assert evaluate("-x + +x - -3", {"x": 5}).data == pytest.approx(3.0)


def test_names_in_order_of_appearance() -> None:
    assert names("tanh(x*w + b) + x * c") == ["x", "w", "b", "c"]
    assert names("leaky_relu(z, alpha=0.1)") == ["z"]


# ------------------------------------------------------------------ properties
TOKENS = ["x", "y", "1", "2.5", "+", "-", "*", "/", "**", "(", ")", "tanh", "exp", ",", ".",
          "[", "]", "lambda", ":", "import", "os", "__class__", "alpha=", "=", "'s'", " ",
          "if", "else", "for", "in", "@", "{", "}", "relu", "sigmoid", "0x1f", "1e5", "\\",
          "\n", "#", "not", "and", "|", "~", "%", "<", "!", '"', "\x00", "…", "λ"]

junk = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(TOKENS), max_size=25).map("".join),
)


@given(junk)
def test_property_junk_only_ever_raises_expression_error(text: str) -> None:
    try:
        tree = parse(text)
    except ExpressionError as exc:
        assert str(exc)
        return
    values = dict.fromkeys(names(tree), 0.7)
    try:
        result = evaluate(text, values)
    except ExpressionError:
        return
    assert isinstance(result, Value)


@pytest.mark.parametrize("text", ["1or x", "0x1for x", "1if x else 2", r"'\%'", r"x + '\-'"])
def test_python_syntax_warnings_never_reach_the_user(text: str) -> None:
    """Python warns about ``1or`` (a number run into a keyword) and about ``'\\%'`` (an
    invalid escape: a DeprecationWarning up to 3.11, a SyntaxWarning since); the parser
    answers with its own result or error only, as on any other input."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")  # ("error" would turn it into a SyntaxError)
        try:
            parse(text)
        except ExpressionError as exc:
            assert str(exc)
    assert [str(w.message) for w in seen] == []


def _sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


UNARY = {
    "tanh": math.tanh,
    "sigmoid": _sigmoid,
    "relu": lambda v: max(v, 0.0),
    "abs": abs,
    "softplus": lambda v: math.log1p(math.exp(-abs(v))) + max(v, 0.0),
}
ENV = {"x": 0.75, "y": -1.5, "z": 2.0}


def _leaf() -> st.SearchStrategy:
    numbers = st.integers(0, 9).map(lambda n: (str(n), float(n)))
    decimals = st.integers(1, 99).map(lambda n: (f"{n / 10}", n / 10))
    variables = st.sampled_from(sorted(ENV)).map(lambda k: (k, ENV[k]))
    return st.one_of(numbers, decimals, variables)


def _extend(children: st.SearchStrategy) -> st.SearchStrategy:
    def binop(pair, op):
        (ta, a), (tb, b) = pair
        if op == "+":
            return f"({ta} + {tb})", a + b
        if op == "-":
            return f"({ta} - {tb})", a - b
        if op == "*":
            return f"({ta} * {tb})", a * b
        return f"({ta} / (2 + tanh({tb})))", a / (2 + math.tanh(b))  # denominator in [1, 3]

    def call(item, name):
        text, v = item
        return f"{name}({text})", UNARY[name](v)

    return st.one_of(
        st.builds(binop, st.tuples(children, children), st.sampled_from("+-*/")),
        st.builds(call, children, st.sampled_from(sorted(UNARY))),
        children.map(lambda t: (f"-{t[0]}", -t[1])),
        children.map(lambda t: (f"({t[0]}) ** 2", t[1] ** 2)),
    )


expressions = st.recursive(_leaf(), _extend, max_leaves=12)


@given(expressions)
def test_property_valid_expressions_match_a_reference(item) -> None:
    text, expected = item
    used = names(text)
    y = evaluate(text, {k: ENV[k] for k in used})
    assert math.isclose(y.data, expected, rel_tol=1e-9, abs_tol=1e-9), text
    y.backward()  # and the graph it built is differentiable
