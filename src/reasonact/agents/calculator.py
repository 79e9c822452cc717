"""A calculator tool: exact arithmetic over a whitelisted expression grammar, never `eval`.

Integers and fractions stay exact (`7/2` → `7/2`, `6/3` → `2`); a float operand or a function such
as `sqrt` makes the result a float. Size limits (expression length, exponent, digits of a result)
keep a hostile expression from burning CPU or memory in the host process, where this tool runs.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from fractions import Fraction

from reasonact.reasoning.tasks.expressions import normalise

Number = Fraction | float
MAX_CHARS = 300  # longest expression accepted
MAX_EXPONENT = 1_000  # |b| in a ** b
MAX_DIGITS = 1_000  # digits of any exact intermediate value
FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "abs": abs,
    "floor": math.floor,
    "ceil": math.ceil,
    "round": round,
    "min": min,
    "max": max,
}
CONSTANTS: dict[str, Number] = {"pi": math.pi, "e": math.e}


class CalculatorError(ValueError):
    """The expression is not one the calculator accepts, or its value is undefined or too large."""


def calculate(expression: str) -> str:
    """The value of `expression` as text: `3 + 4*2` → `11`, `1/3 + 1/6` → `1/2`, `sqrt(2)` → `1.414…`."""
    return format_value(evaluate(expression))


def evaluate(expression: str) -> Number:
    if not isinstance(expression, str):
        raise CalculatorError(f"expression: expected a string, received {type(expression).__name__}")
    text = normalise(expression).replace("^", "**")
    if not text or len(text) > MAX_CHARS:
        raise CalculatorError(f"expression: expected 1..{MAX_CHARS} characters, received {len(text)}")
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as err:
        raise CalculatorError(f"not an arithmetic expression: {text!r}") from err
    return _value(tree)


def format_value(value: Number) -> str:
    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _value(node: ast.expr) -> Number:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return Fraction(node.value) if isinstance(node.value, int) else float(node.value)
    if isinstance(node, ast.Name) and node.id in CONSTANTS:
        return CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _value(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        return _checked(_binary(node.op, _value(node.left), _value(node.right)))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
        if node.keywords or not node.args:
            raise CalculatorError(f"{node.func.id}: expected positional arguments, e.g. {node.func.id}(2)")
        args = [_value(a) for a in node.args]
        try:
            result = FUNCTIONS[node.func.id](*args)
        except (ValueError, TypeError, OverflowError) as err:
            raise CalculatorError(f"{node.func.id}{tuple(format_value(a) for a in args)}: {err}") from err
        return _checked(Fraction(result) if isinstance(result, int | Fraction) else float(result))
    grammar = f"numbers, + - * / // % **, {', '.join(FUNCTIONS)}"
    raise CalculatorError(f"unsupported syntax: {ast.unparse(node)!r} (accepted: {grammar})")


def _binary(op: ast.operator, a: Number, b: Number) -> Number:
    try:
        if isinstance(op, ast.Add):
            return a + b
        if isinstance(op, ast.Sub):
            return a - b
        if isinstance(op, ast.Mult):
            return a * b
        if isinstance(op, ast.Div):
            return a / b
        if isinstance(op, ast.FloorDiv):
            return Fraction(a // b)
        if isinstance(op, ast.Mod):
            return a % b
        if isinstance(op, ast.Pow):
            if abs(b) > MAX_EXPONENT:
                raise CalculatorError(f"exponent: expected |b| <= {MAX_EXPONENT} in a ** b, received {b}")
            if isinstance(b, Fraction) and b.denominator != 1:
                return float(a) ** float(b)
            bits = max(abs(a.numerator), a.denominator).bit_length() if isinstance(a, Fraction) else 0
            if bits * abs(b) > 3.33 * MAX_DIGITS:
                raise CalculatorError(f"result too large: more than {MAX_DIGITS} digits")
            return a**b
    except ZeroDivisionError as err:
        raise CalculatorError("division by zero") from err
    except OverflowError as err:
        raise CalculatorError(f"result too large: {err}") from err
    raise CalculatorError(f"unsupported operator {type(op).__name__}")


def _checked(value: Number) -> Number:
    if isinstance(value, complex):
        raise CalculatorError("the result is not a real number")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError(f"the result is not finite ({value})")
    if isinstance(value, Fraction) and max(abs(value.numerator), value.denominator).bit_length() > 3.33 * MAX_DIGITS:
        raise CalculatorError(f"result too large: more than {MAX_DIGITS} digits")
    return value
