"""Work budgets for computations that may not finish (SymPy has no bound of its own).

The work of a computation is counted in *steps*: the Python function calls it makes, counted
by a trace hook (``sys.settrace``, ``call`` events only) in the thread that runs it. The count
is set by the input and the SymPy version, not by the machine's speed or load, so a budget of
steps gives the same answer on a fast idle machine and on a slow loaded one. It is not exact to
the step: SymPy numbers its dummy symbols from a process-wide counter, and set orders follow
their hashes, so one limit's count varies by a few percent between repeats (2–3% measured).
The budgets are set far above what the project's test scalings need (the slowest, 1.55 million
steps for one scaling and 0.66 million for one limit, against 20 and 5 million), so this matters
only for a scaling within a few percent of a budget.

:func:`call_with_budget` runs a function in a short-lived worker thread with its own hook; past
its steps, the hook raises :class:`BudgetExceeded` inside the computation. A
:class:`StepBudget` shares one allowance between all the computations on one scaling. A wall
clock remains only as a safety net, for work that makes no Python calls (a long C loop):
:data:`WALL_SAFETY_SECONDS`, many times what any budget takes on a loaded machine; when it
fires the answer is the same as for a spent budget.
"""
import ctypes
import sys
import threading

__all__ = ["LIMIT_STEPS", "NUMERIC_STEPS", "SCALING_STEPS", "WALL_SAFETY_SECONDS", "StepBudget",
           "BudgetExceeded", "call_with_budget", "budget_note"]

#: Steps allowed to one SymPy computation (a limit, an eventual sign, a simplification).
LIMIT_STEPS = 5_000_000
#: Steps allowed to the numeric fallback of one limit.
NUMERIC_STEPS = 1_000_000
#: Steps allowed to all the symbolic and numeric work on one scaling (validity checks, limit
#: constants, simplex limit).
SCALING_STEPS = 20_000_000
#: Wall seconds after which a computation is stopped whatever its steps (a safety net only:
#: LIMIT_STEPS take about 5 s on one core of this project's machine, 20 s on a loaded one).
WALL_SAFETY_SECONDS = 300.0


class StepBudget:
    """A total allowance of steps shared by the computations on one scaling.

    Each computation is granted at most what is left (:meth:`grant`) and charged the steps it
    took (:func:`call_with_budget` does both).

    Parameters
    ----------
    steps : int
        The allowance (default :data:`SCALING_STEPS`).
    """

    def __init__(self, steps=None):
        self.steps = SCALING_STEPS if steps is None else int(steps)
        self.spent = 0

    @property
    def left(self):
        """Steps not yet spent."""
        return max(0, self.steps - self.spent)

    def grant(self, steps, keep=0):
        """At most ``steps``, leaving ``keep`` steps of the allowance for later."""
        return max(0, min(steps, self.left - keep))


class BudgetExceeded(BaseException):
    """Raised inside a computation past its steps (or, as a safety net, its wall time).

    A ``BaseException`` so that SymPy's ``except Exception`` clauses do not swallow it.
    """


def _interrupt(thread):
    """Raise :class:`BudgetExceeded` asynchronously in ``thread`` (CPython's SetAsyncExc)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident),
                                               ctypes.py_object(BudgetExceeded))


def call_with_budget(function, steps, budget=None, keep=0):
    """Run ``function()`` in a worker thread and let it make at most ``steps`` Python calls.

    With a :class:`StepBudget`, ``steps`` is also capped by what the budget grants (leaving
    ``keep`` steps of it), and the steps taken are charged to it (all that was granted when the
    computation is stopped).

    Returns
    -------
    (status, value)
        ``("done", result)``, ``("error", exception)`` or ``("budget", None)``. A stopped
        worker is abandoned; it ends at its next Python call (at the latest, its next
        bytecode, when the wall-clock safety net interrupts it).
    """
    if budget is not None:
        steps = budget.grant(steps, keep)
        if steps <= 0:
            return "budget", None
    box = {"steps": 0}
    lock = threading.Lock()
    state = {"done": False, "over": False}

    def count(frame, event, arg):
        box["steps"] += 1
        if box["steps"] > steps:
            state["over"] = True
            raise BudgetExceeded

    def target():
        try:
            sys.settrace(count)
            try:
                box["value"] = function()
            except BudgetExceeded:
                state["over"] = True
            except BaseException as exc:           # reported to the caller, not raised here
                box["error"] = exc
            finally:
                sys.settrace(None)
                with lock:
                    state["done"] = True
        except BudgetExceeded:                     # delivered just as the work finished
            state["over"] = True

    thread = threading.Thread(target=target, name="sympy-step-budget", daemon=True)
    thread.start()
    thread.join(WALL_SAFETY_SECONDS)
    with lock:
        finished = state["done"]
        if not finished:
            _interrupt(thread)                     # once, and only while it is working
    over = state["over"] or not finished
    if budget is not None:
        budget.spent += steps if over else min(box["steps"], steps)
    if over:
        return "budget", None
    if "error" in box:
        return "error", box["error"]
    return "done", box.get("value")


def budget_note(what, steps, budget, reserve=0):
    """The note of a computation stopped by its budget: its own ``steps`` or the scaling's."""
    if budget is not None and budget.left <= reserve:
        return (f"{what}: undetermined (budget): the {budget.steps:,} steps for this scaling "
                "are spent")
    return f"{what}: undetermined (budget): more than {steps:,} steps"
