"""Safe expressions in the width n: a whitelisted ``ast`` walk, then a SymPy expression.

User text is never given to ``eval`` or to ``sympy.sympify`` (which evaluates code). The text
is parsed with :func:`ast.parse`, every node is checked against a whitelist (numbers, the
name ``n``, ``+ - * / **``, unary ± and the functions ``log``, ``sqrt``, ``exp``), and the
checked tree is translated node by node into SymPy. Number literals become exact rationals
(``0.3`` is 3/10), so limits are exact.

Rules beyond the grammar, so that every accepted expression is a real exp-log function of n
that floats can evaluate at the scan widths:

* exponents of ``**`` do not depend on n (``n**n`` is refused; exp(...) is available);
* sub-expressions free of n evaluate to finite floats (huge literals such as ``10**400`` or
  ``exp(1000)`` are refused, and so are constants that underflow to 0);
* a negative base is never raised to a fractional power, and arguments of ``log``/``sqrt``
  that SymPy cannot see are positive are recorded as conditions, checked for all large n by
  :mod:`phase_diagram.theory.asymptotics` (see :attr:`ParsedExpression.conditions`);
* SymPy never has to compute huge exact numbers. It evaluates exactly, as it builds an
  expression, powers of rational numbers such as the 2**(10**30) hidden in
  ``exp(10**30*log(2*n))`` = (2n)^(10^30); one such computation cannot be interrupted and would
  hang the process. :func:`_exact_bits` bounds, node by node, the size in bits of any number
  SymPy may form, and expressions above :data:`MAX_EXACT_BITS` are refused.
"""
import ast
import math
import operator
from dataclasses import dataclass

import mpmath
import sympy

__all__ = ["WIDTH", "MAX_DEPTH", "MAX_EXACT_BITS", "ParsedExpression", "parse_expression", "evaluate_tree",
           "format_width", "quote"]

#: The width n. Declared positive real (not integer): the expressions are exp-log functions,
#: which are eventually monotone (Hardy), so their limits along the integers equal the limits
#: along the reals, and SymPy's Gruntz algorithm works on real variables.
WIDTH = sympy.Symbol("n", positive=True)
#: Deepest expression tree accepted.
MAX_DEPTH = 100
#: Largest exact number (in bits) SymPy may have to form from an expression (about 3600
#: decimal digits): larger constant powers stay floats, and other expressions are refused.
MAX_EXACT_BITS = 12000

_FLOAT_FUNCTIONS = {"log": math.log, "sqrt": math.sqrt, "exp": math.exp}
_SYMPY_FUNCTIONS = {"log": sympy.log, "sqrt": sympy.sqrt, "exp": sympy.exp}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}


def _check_tree(node, name, text):
    """Reject every node outside the whitelist (numbers, n, + - * / **, log/sqrt/exp)."""
    def fail(message):
        raise ValueError(f"{name} expression {quote(text)}: {message}")

    called = {id(sub.func) for sub in ast.walk(node) if isinstance(sub, ast.Call)}
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Expression, ast.Load, ast.BinOp, ast.UAdd, ast.USub)):
            continue
        if isinstance(sub, ast.operator):
            if type(sub) not in _BINARY:
                fail(f"operator {type(sub).__name__} not allowed")
        elif isinstance(sub, ast.UnaryOp):
            if not isinstance(sub.op, (ast.UAdd, ast.USub)):
                fail(f"operator {type(sub.op).__name__} not allowed")
        elif isinstance(sub, ast.Constant):
            if isinstance(sub.value, bool) or not isinstance(sub.value, (int, float)):
                fail("only numbers are allowed as constants")
        elif isinstance(sub, ast.Name):
            if sub.id in _FLOAT_FUNCTIONS:
                if id(sub) not in called:
                    fail(f"{sub.id} must be called, as in {sub.id}(n)")
            elif sub.id != "n":
                fail(f"unknown name {quote(sub.id)} (allowed: n, log, sqrt, exp)")
        elif isinstance(sub, ast.Call):
            if not (isinstance(sub.func, ast.Name) and sub.func.id in _FLOAT_FUNCTIONS):
                fail("only log, sqrt and exp may be called")
            if len(sub.args) != 1 or sub.keywords:
                fail(f"{sub.func.id}() takes exactly one argument")
        else:
            fail(f"{type(sub).__name__} not allowed")


def _has_width(node):
    return any(isinstance(sub, ast.Name) and sub.id == "n" for sub in ast.walk(node))


def evaluate_tree(node, n):
    """Float value of a checked tree at width ``n`` (plain float arithmetic).

    Raises ``ArithmeticError``/``ValueError`` as float arithmetic does, and ``ValueError``
    for a negative number raised to a fractional power (Python would return a complex).
    """
    if isinstance(node, ast.Expression):
        return evaluate_tree(node.body, n)
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return float(n)
    if isinstance(node, ast.UnaryOp):
        value = evaluate_tree(node.operand, n)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        value = _BINARY[type(node.op)](evaluate_tree(node.left, n), evaluate_tree(node.right, n))
        if isinstance(value, complex):
            raise ValueError("a negative number raised to a fractional power")
        return value
    return _FLOAT_FUNCTIONS[node.func.id](evaluate_tree(node.args[0], n))


def _exact_bits(node, value, child_bits):
    """Upper bound (log2) on the numbers SymPy may form exactly while building ``node``.

    ``value`` is the float value of an n-free node (else ``None``) and ``child_bits`` the
    bounds of its children. A constant c counts |log2 |c||; products add; a power x**e
    multiplies by |e|, since SymPy distributes it over numeric factors, (2n)^e = 2^e n^e; log
    brings an exponent down as a coefficient, log(x^k) = k log x (about log2 of the bound);
    exp turns a coefficient back into an exponent, exp(c log x) = x^c (2 to the bound).
    """
    if value is not None:
        return max(1.0, abs(math.log2(abs(value)))) if value else 1.0
    if isinstance(node, ast.Name):
        return 1.0
    if isinstance(node, ast.UnaryOp):
        return child_bits[0]
    if isinstance(node, ast.Call):
        inner = child_bits[0]
        if node.func.id == "log":
            return math.log2(inner + 2.0)
        return inner if node.func.id == "sqrt" else 2.0 ** min(inner, 1100.0)
    left, right = child_bits
    if isinstance(node.op, (ast.Add, ast.Sub)):
        return max(left, right)
    if isinstance(node.op, (ast.Mult, ast.Div)):
        return left + right
    return left * max(1.0, abs(evaluate_tree(node.right, 1.0)))


class _Translator:
    """Checked ``ast`` tree → SymPy expression, collecting the large-n conditions."""

    def __init__(self, name, text):
        self.name, self.text = name, text
        self.conditions = []

    def fail(self, message):
        raise ValueError(f"{self.name} expression {quote(self.text)} {message}")

    def constant(self, node):
        """The float value of an n-free sub-tree; refuses non-finite or underflowing values."""
        where = quote(ast.unparse(node))
        try:
            value = evaluate_tree(node, 1.0)
        except OverflowError:
            self.fail(f"cannot be evaluated: {where} overflows floats")
        except ZeroDivisionError:
            self.fail(f"cannot be evaluated: {where} divides by zero")
        except (ArithmeticError, ValueError) as exc:
            self.fail(f"cannot be evaluated: {where} ({exc})")
        if not math.isfinite(value):
            self.fail(f"cannot be evaluated: {where} is not a finite float")
        return value

    def __call__(self, node):
        if isinstance(node, ast.Expression):
            return self(node.body)
        value = None if _has_width(node) else self.constant(node)
        expr = self.translate(node, value)
        if value == 0.0 and not expr.is_zero:
            self.fail(f"cannot be evaluated: {quote(ast.unparse(node))} underflows to 0 in "
                      "floats")
        return expr

    def check_size(self, node):
        """Refuse an expression whose exact evaluation could need numbers above MAX_EXACT_BITS.

        Returns the bound of :func:`_exact_bits` for ``node`` (checked bottom-up).
        """
        value = None if _has_width(node) else self.constant(node)
        children = [] if value is not None else (
            [node.operand] if isinstance(node, ast.UnaryOp) else
            [node.args[0]] if isinstance(node, ast.Call) else
            [node.left, node.right] if isinstance(node, ast.BinOp) else [])
        bits = _exact_bits(node, value, [self.check_size(child) for child in children])
        if bits > MAX_EXACT_BITS:
            self.fail(f"is too large for exact arithmetic: {quote(ast.unparse(node))} could "
                      f"need numbers of {bits:.3g} bits (at most {MAX_EXACT_BITS}); "
                      "use smaller constants or exponents")
        return bits

    def translate(self, node, value):
        if isinstance(node, ast.Constant):
            return sympy.Integer(node.value) if isinstance(node.value, int) \
                else sympy.Rational(repr(node.value))
        if isinstance(node, ast.Name):
            return WIDTH
        if isinstance(node, ast.UnaryOp):
            inner = self(node.operand)
            return -inner if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.Call):
            return self.call(node.func.id, self(node.args[0]), node.args[0])
        if isinstance(node.op, ast.Pow):
            return self.power(node, value)
        left, right = self(node.left), self(node.right)
        if isinstance(node.op, ast.Div) and right.is_zero:
            self.fail(f"divides by zero in {quote(ast.unparse(node))}")
        return _BINARY[type(node.op)](left, right)

    def call(self, function, arg, arg_node):
        if function != "exp":
            if arg.is_negative or (function == "log" and arg.is_zero):
                self.fail(f"takes {function} of a quantity that is not positive "
                          f"({quote(ast.unparse(arg_node))})")
            if not arg.is_positive and arg.has(WIDTH):
                self.conditions.append((f"the argument of {function}", arg))
        return _SYMPY_FUNCTIONS[function](arg)

    def power(self, node, value):
        if _has_width(node.right):
            self.fail("has n in an exponent; exponents must be constants "
                      "(write exp(...) for a variable exponent)")
        base, exponent = self(node.left), self(node.right)
        if value is not None:       # constant ** constant: exact unless the result is huge
            size = max(abs(sympy.fraction(base)[0]), abs(sympy.fraction(base)[1]), 2) \
                if base.is_Rational else 2
            if abs(float(exponent)) * math.log2(size) > MAX_EXACT_BITS:
                if value == 0.0:
                    self.fail(f"cannot be evaluated: {quote(ast.unparse(node))} underflows "
                              "to 0 in floats")
                return sympy.Float(value)
        if not exponent.is_integer:
            if base.is_negative:
                self.fail("raises a negative number to a fractional power "
                          f"({ast.unparse(node)})")
            if not base.is_nonnegative and base.has(WIDTH):
                self.conditions.append(("the base of a fractional power", base))
        if base.is_zero and exponent.is_negative:
            self.fail(f"divides by zero in {quote(ast.unparse(node))}")
        return base ** exponent


@dataclass(frozen=True, eq=False)
class ParsedExpression:
    """A checked expression in n: its text, SymPy form and float evaluator.

    Attributes
    ----------
    text : str
        The expression as given (stripped).
    name : str
        What it is (``"tau"`` or ``"keep"``), for error messages.
    expr : sympy.Expr
        The SymPy expression in :data:`WIDTH`.
    conditions : tuple of (str, sympy.Expr)
        Sub-expressions that must be positive for all large n (arguments of log and sqrt,
        bases of fractional powers) and that SymPy's assumptions alone do not show positive.
    tree : ast.Expression
        The checked tree, evaluated in floats by :meth:`__call__`.
    """

    text: str
    name: str
    expr: object
    conditions: tuple
    tree: object

    def __call__(self, n):
        """Float value at width ``n``; ``ValueError`` (not a traceback) when floats fail."""
        try:
            value = evaluate_tree(self.tree, n)
        except OverflowError:
            raise ValueError(f"{self.name}_n = {self.text} overflows floats at "
                             f"n={format_width(n)}") from None
        except (ArithmeticError, ValueError) as exc:
            raise ValueError(f"{self.name}_n = {self.text} cannot be evaluated at "
                             f"n={format_width(n)}: {exc}") from None
        if not math.isfinite(value):
            raise ValueError(f"{self.name}_n = {self.text} overflows floats at "
                             f"n={format_width(n)}")
        return value

    def __reduce__(self):
        return (parse_expression, (self.text, self.name))


def quote(text, limit=80):
    """``repr`` of ``text``, shortened to about ``limit`` characters for one-line messages."""
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit - 20]) + f"... ({len(text)} characters)"


def format_width(n):
    """A width for messages: exact up to 10^15, else 6 digits (any size of integer)."""
    if isinstance(n, float):
        return f"{n:.6g}"
    return str(n) if abs(n) <= 10**15 else mpmath.nstr(mpmath.mpf(n), 6)


def parse_expression(text, name):
    """Parse and check one expression in n.

    Parameters
    ----------
    text : str
        E.g. ``"0.5*n**-1.5"`` or ``"1/(n*log(n))"``.
    name : str
        The argument it comes from (``"tau"``, ``"keep"``), named in error messages.

    Returns
    -------
    ParsedExpression

    Raises
    ------
    ValueError
        One line naming ``name``: empty or malformed text, nodes outside the whitelist,
        nesting deeper than :data:`MAX_DEPTH`, n in an exponent, constants that are not finite
        floats, negative numbers to fractional powers, division by zero, numbers too large for
        exact arithmetic (:data:`MAX_EXACT_BITS`).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name} expression must be a non-empty string, got "
                         f"{quote(text) if isinstance(text, str) else repr(text)}")
    text = text.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"malformed {name} expression {quote(text)}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ValueError(f"{name} expression {quote(text)} is nested too deeply") from None
    _check_tree(tree, name, text)
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"{name} expression {quote(text)} is nested more than {MAX_DEPTH} "
                             "levels deep")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    translate = _Translator(name, text)
    try:
        translate.check_size(tree.body)
        expr = translate(tree)
    except RecursionError:
        raise ValueError(f"{name} expression {quote(text)} is nested too deeply") from None
    if expr.has(sympy.zoo, sympy.nan, sympy.I, sympy.oo):
        raise ValueError(f"{name} expression {quote(text)} is not a finite real expression "
                         f"(it simplifies to {quote(str(expr))})")
    return ParsedExpression(text, name, expr, tuple(translate.conditions), tree)
