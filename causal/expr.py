"""Safe arithmetic expressions for nonlinear structural equations.

A model file is data, not code: an equation such as ``0.5*speed**2 - 0.3*friction`` must never reach
``eval``. This module has its own tokenizer and a recursive-descent parser that builds a tiny AST of
numbers, variable names, unary minus/plus, ``+ - * / **`` and a fixed set of one-argument functions.
Anything else is rejected with an error naming the offending token and its position.

Grammar (``**`` binds tighter than unary minus and is right-associative, as in Python)::

    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "/") unary)*
    unary  := ("-" | "+") unary | power
    power  := atom ("**" unary)?
    atom   := NUMBER | NAME | FUNC "(" expr ")" | "(" expr ")"

Example:
    >>> expression = parse_expression("0.5*speed**2 - sin(mass)", allowed_names={"speed", "mass"})
    >>> float(expression.evaluate({"speed": 2.0, "mass": 0.0}))
    2.0
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

FUNCTIONS: dict[str, object] = {
    "sin": np.sin,
    "cos": np.cos,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "tanh": np.tanh,
    "abs": np.abs,
}

MAX_EXPRESSION_LENGTH = 10_000  # characters
MAX_NESTING = 50  # parentheses, function calls, unary signs and ** exponents nested inside one another

_NUMBER = r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_TOKEN_RE = re.compile(rf"\s*(?:(?P<number>{_NUMBER})|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|(?P<op>\*\*|[-+*/()]))")


@dataclass(frozen=True)
class Token:
    """One lexical unit with its character offset (for error messages)."""

    kind: str  # "number", "name", "op" or "end"
    text: str
    position: int


@dataclass(frozen=True)
class Number:
    """A numeric literal."""

    value: float


@dataclass(frozen=True)
class Name:
    """A reference to a parent variable."""

    name: str


@dataclass(frozen=True)
class Unary:
    """Unary minus or plus."""

    op: str
    operand: Node


@dataclass(frozen=True)
class Binary:
    """A binary arithmetic operation."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    """One of the whitelisted one-argument functions."""

    function: str
    argument: Node


Node = Number | Name | Unary | Binary | Call


def tokenize(text: str) -> list[Token]:
    """Split `text` into tokens; a character that starts no valid token becomes an "invalid" token.

    Invalid tokens are reported by the parser when it reaches them, so the first problem in reading
    order is the one named (``__import__('os')`` fails on the unknown function, not on the quote).
    """
    tokens: list[Token] = []
    position = 0
    while text[position:].strip():
        match = _TOKEN_RE.match(text, position)
        if match is None:
            start = len(text) - len(text[position:].lstrip())
            tokens.append(Token("invalid", text[start], start))
            position = start + 1
            continue
        kind = match.lastgroup or "op"
        tokens.append(Token(kind, match.group(kind), match.start(kind)))
        position = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


class _Parser:
    """Recursive-descent parser over a token list; one method per grammar rule."""

    def __init__(self, text: str, allowed_names: set[str] | None) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.allowed_names = allowed_names
        self.depth = 0

    def nest(self, token: Token) -> None:
        """Enter one nesting level; the parser recurses per level, so the depth is bounded up front."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ValueError(
                f"expression nests deeper than {MAX_NESTING} levels (parentheses, function calls, unary signs "
                f"or ** chains) at position {token.position}"
            )

    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def fail(self, token: Token, expected: str) -> ValueError:
        shown = "end of expression" if token.kind == "end" else f"token {token.text!r}"
        return ValueError(
            f"unexpected {shown} at position {token.position} in expression {self.text!r}; expected {expected}"
        )

    def parse(self) -> Node:
        node = self.expr()
        if self.peek().kind != "end":
            raise self.fail(self.peek(), "an operator (+ - * / **) or the end")
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.peek().text in ("+", "-") and self.peek().kind == "op":
            op = self.take().text
            node = Binary(op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek().text in ("*", "/") and self.peek().kind == "op":
            op = self.take().text
            node = Binary(op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.peek().kind == "op" and self.peek().text in ("-", "+"):
            token = self.take()
            self.nest(token)
            node: Node = Unary(token.text, self.unary())
            self.depth -= 1
            return node
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        if self.peek().kind == "op" and self.peek().text == "**":
            self.nest(self.take())
            node: Node = Binary("**", base, self.unary())
            self.depth -= 1
            return node
        return base

    def atom(self) -> Node:
        token = self.take()
        if token.kind == "number":
            return Number(float(token.text))
        if token.kind == "op" and token.text == "(":
            self.nest(token)
            node = self.expr()
            self.expect(")")
            self.depth -= 1
            return node
        if token.kind == "name":
            return self.name_or_call(token)
        raise self.fail(token, "a number, a variable name, a function call or '('")

    def name_or_call(self, token: Token) -> Node:
        if token.text in FUNCTIONS:
            self.expect("(")
            self.nest(token)
            argument = self.expr()
            self.expect(")")
            self.depth -= 1
            return Call(token.text, argument)
        if self.peek().kind == "op" and self.peek().text == "(":
            known = ", ".join(sorted(FUNCTIONS))
            raise ValueError(
                f"unknown function {token.text!r} at position {token.position} in expression {self.text!r}; "
                f"allowed functions: {known}"
            )
        if self.allowed_names is not None and token.text not in self.allowed_names:
            allowed = ", ".join(sorted(self.allowed_names)) or "(none)"
            raise ValueError(
                f"unknown name {token.text!r} at position {token.position} in expression {self.text!r}; "
                f"expected one of the parents: {allowed}"
            )
        return Name(token.text)

    def expect(self, text: str) -> None:
        token = self.take()
        if token.kind != "op" or token.text != text:
            raise self.fail(token, repr(text))


def _apply(op: str, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if op == "/":
        return left / right
    return np.power(left, right)


def _left_spine(node: Node) -> tuple[Node, list[Binary]]:
    """The leftmost operand of a left-associative chain and its operations, outermost last.

    ``a + b + ... + z`` parses into a left-deep tree as deep as it has terms; walking the chain in a
    loop keeps recursion bounded by the parser's nesting limit, not by the number of terms.
    """
    chain: list[Binary] = []
    while isinstance(node, Binary) and node.op != "**":
        chain.append(node)
        node = node.left
    chain.reverse()
    return node, chain


def _evaluate(node: Node, values: Mapping[str, np.ndarray | float]) -> np.ndarray:
    node, chain = _left_spine(node)
    if isinstance(node, Number):
        result = np.asarray(node.value, dtype=float)
    elif isinstance(node, Name):
        result = np.asarray(values[node.name], dtype=float)
    elif isinstance(node, Unary):
        operand = _evaluate(node.operand, values)
        result = -operand if node.op == "-" else operand
    elif isinstance(node, Call):
        function = FUNCTIONS[node.function]
        result = function(_evaluate(node.argument, values))  # type: ignore[operator]
    else:  # "**", right-associative and depth-limited by the parser
        result = np.power(_evaluate(node.left, values), _evaluate(node.right, values))
    for binary in chain:
        result = _apply(binary.op, result, _evaluate(binary.right, values))
    return result


def _names(node: Node) -> set[str]:
    node, chain = _left_spine(node)
    names: set[str] = set()
    for binary in chain:
        names |= _names(binary.right)
    if isinstance(node, Name):
        names.add(node.name)
    elif isinstance(node, (Unary, Call)):
        names |= _names(node.operand if isinstance(node, Unary) else node.argument)
    elif isinstance(node, Binary):
        names |= _names(node.left) | _names(node.right)
    return names


@dataclass(frozen=True)
class Expression:
    """A parsed expression: the source text, its AST and the variable names it reads."""

    text: str
    root: Node
    names: frozenset[str]

    def evaluate(self, values: Mapping[str, np.ndarray | float]) -> np.ndarray:
        """Evaluate element-wise with numpy; `values` maps every name in `self.names` to a scalar or array.

        Floating-point problems (log of a negative, division by zero, overflow as in ``10**10**10``) give
        nan/inf rather than warnings; callers decide whether non-finite values are an error (the causal
        engines refuse them with a ValueError naming the node).
        """
        missing = self.names - set(values)
        if missing:
            raise KeyError(f"expression {self.text!r} needs values for {sorted(missing)}")
        with np.errstate(all="ignore"):
            return _evaluate(self.root, values)


def parse_expression(text: str, allowed_names: Iterable[str] | None = None) -> Expression:
    """Parse `text` into an `Expression`; with `allowed_names`, any other variable name is an error.

    Raises:
        ValueError: naming the offending token and its position, or the limit exceeded: more than
            `MAX_EXPRESSION_LENGTH` characters, or nesting deeper than `MAX_NESTING` levels.
        TypeError: if `text` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"expression must be a string, got {type(text).__name__}: {text!r}")
    if not text.strip():
        raise ValueError("expression is empty")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ValueError(f"expression is {len(text)} characters long; the limit is {MAX_EXPRESSION_LENGTH}")
    allowed = None if allowed_names is None else set(allowed_names)
    root = _Parser(text, allowed).parse()
    return Expression(text=text, root=root, names=frozenset(_names(root)))
