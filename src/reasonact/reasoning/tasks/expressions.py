"""Exact arithmetic on expression strings: a safe evaluator over `Fraction`s and a one-operation
reducer. Step solvers write a solution as a sequence of reductions; step checkers re-evaluate
what a model wrote. No `eval`: only numbers, + - * /, unary minus, parentheses and one variable."""

from __future__ import annotations

import ast
from fractions import Fraction

_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
MAX_CHARS = 400  # refuse to parse anything longer: model outputs can be arbitrary


class ExpressionError(ValueError):
    """Raised when a string is not an arithmetic expression this module accepts."""


def normalise(text: str) -> str:
    """Typographic operators (×, ÷, −) → ASCII."""
    return text.replace("×", "*").replace("÷", "/").replace("−", "-").replace("–", "-").strip()


def parse(text: str) -> ast.expr:
    text = normalise(text)
    if not text or len(text) > MAX_CHARS:
        raise ExpressionError(f"expected an expression of 1..{MAX_CHARS} characters, received {len(text)}")
    try:
        return ast.parse(text, mode="eval").body
    except SyntaxError as err:
        raise ExpressionError(f"not an arithmetic expression: {text!r}") from err


def evaluate(node: ast.expr | str, variables: dict[str, Fraction] | None = None) -> Fraction:
    """Exact value of an expression; division by zero and unknown syntax raise ExpressionError."""
    if isinstance(node, str):
        node = parse(node)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return Fraction(node.value)
    if isinstance(node, ast.Name) and variables is not None and node.id in variables:
        return variables[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = evaluate(node.operand, variables)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = evaluate(node.left, variables), evaluate(node.right, variables)
        if isinstance(node.op, ast.Div):
            if right == 0:
                raise ExpressionError("division by zero")
            return left / right
        return {ast.Add: left + right, ast.Sub: left - right, ast.Mult: left * right}[type(node.op)]
    raise ExpressionError(f"unsupported syntax: {ast.unparse(node)!r}")


def count_operations(node: ast.expr | str) -> int:
    if isinstance(node, str):
        node = parse(node)
    return sum(isinstance(n, ast.BinOp) for n in ast.walk(node))


def _literal(value: Fraction) -> ast.expr:
    if value.denominator != 1:
        raise ExpressionError(f"non-integer intermediate value {value}")
    number = ast.Constant(abs(value.numerator))
    return ast.UnaryOp(ast.USub(), number) if value < 0 else number


def _is_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return isinstance(node.operand, ast.Constant)
    return isinstance(node, ast.Constant)


def reduce_once(node: ast.expr) -> tuple[ast.expr, ast.BinOp | None, Fraction | None]:
    """Evaluate the first operation (in evaluation order) whose operands are both numbers.

    Returns (new tree, the operation evaluated, its value); (tree, None, None) when nothing is left.
    Double negations `-(-x)` collapse as part of the reduction."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and not _is_literal(node):
        if _is_literal(node.operand) or isinstance(node.operand, ast.UnaryOp):
            value = evaluate(node)
            return _literal(value), None, value
        inner, op, value = reduce_once(node.operand)
        return ast.UnaryOp(ast.USub(), inner), op, value
    if isinstance(node, ast.BinOp):
        if _is_literal(node.left) and _is_literal(node.right):
            value = evaluate(node)
            return _literal(value), node, value
        for side in ("left", "right"):
            child = getattr(node, side)
            if not _is_literal(child):
                new, op, value = reduce_once(child)
                copy = ast.BinOp(node.left, node.op, node.right)
                setattr(copy, side, new)
                return copy, op, value
    return node, None, None


def unparse(node: ast.expr) -> str:
    return ast.unparse(node)


def format_number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
