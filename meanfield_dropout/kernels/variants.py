"""The update rules of the engine as one jitted kernel on the layer of :mod:`.core`.

Each variant is a :class:`Rule`: which mask its forward and its backward pass apply (none, the
dropout mask M, or the independent forward mask M'), with its constants. :func:`_run_chunk`
advances particles by a chunk of steps of one rule on planned masks and minibatches,
records the unmasked losses asked for and stops at the first step out of range; the public
driver is :func:`meanfield_dropout.engine.simulate`.
"""
import math
from typing import NamedTuple

import numpy as np
from numba import njit

from .core import _backward_step, _forward_sums, _loss_derivative, _loss_value
from .relu_signs import SIGN_PATH_ONLY, _sign_path
from .structs import Kept, NetworkData, Rows, Update, Weights

VARIANTS = ("gd", "dropout", "ram", "pn", "pn_ram", "penalized")
#: Which mask a rule applies forward and backward: no mask, the dropout mask M, or the
#: independent forward mask M'.
NO_MASK, DROPOUT_MASK, FORWARD_MASK = 0, 1, 2
MASKS = {"gd": (NO_MASK, NO_MASK), "dropout": (DROPOUT_MASK, DROPOUT_MASK),
         "ram": (NO_MASK, DROPOUT_MASK), "pn": (FORWARD_MASK, NO_MASK),
         "pn_ram": (FORWARD_MASK, DROPOUT_MASK), "penalized": (NO_MASK, NO_MASK)}
#: Largest (neurons × batch) pre-activations, in bytes, that the forward pass keeps for the
#: backward pass (:attr:`Rule.keep_pre`, set by the engine from this value when a run
#: starts); above it the backward pass recomputes them (one more product with the
#: data, cheaper than a round trip through memory). On the sign path of the core (ReLU,
#: one output, no penalty) only their signs are kept, up to :data:`KEEP_SIGN_BYTES`.
#: Measured on this project's 2-core machine (m = 500, d = 20): keeping the float64 values
#: was 1.2x faster at 20 MB (n = 5000) and recomputing them 1.3-1.5x faster at 40-80 MB
#: (n = 20 000).
KEEP_PRE_BYTES = 32 * 2 ** 20
#: The same for the signs that the sign path keeps instead (one byte each): a round trip
#: through memory costs an eighth of the values', far less than recomputing them.
KEEP_SIGN_BYTES = 256 * 2 ** 20


class Rule(NamedTuple):
    """One update rule with its constants, as the kernel reads it.

    ``keep_pre``: the forward pass may keep the pre-activations for the backward pass (see
    :data:`KEEP_PRE_BYTES`); the numbers are the same either way.
    """

    forward_mask: int
    backward_mask: int
    keep_prob: float        # q
    master_lr: float        # τ
    scale: float            # s, the factor of the output scale (1/n or 1)
    penalty: float          # λ
    output_bound: float
    parameter_bound: float
    keep_pre: bool


class Data(NamedTuple):
    """The data of a run: ``train`` and ``validation``, each a
    :class:`~meanfield_dropout.kernels.structs.NetworkData` (inputs Z, Zᵀ, targets y (K, m),
    K, bias, activation and loss codes); the validation data may hold no points."""

    train: tuple
    validation: tuple


class Chunk(NamedTuple):
    """The planned randomness of a chunk of steps, and the steps whose losses it records."""

    masks: np.ndarray           # (steps, n) bool dropout masks M
    forward_masks: np.ndarray   # (steps, n) bool independent forward masks M' (PN), or no rows
    batches: np.ndarray         # (steps, B) int minibatch indices (zero columns: full batch)
    record: np.ndarray          # (steps,) or (steps + 1,) bool: record the losses before step k
                                # (entry steps: after the last step)


class Losses(NamedTuple):
    """Where a chunk writes the losses it records, one entry per entry of ``Chunk.record``."""

    train: np.ndarray           # unmasked train loss
    validation: np.ndarray      # unmasked validation loss


@njit(cache=True)
def _active_rows(mask_row, out):
    """Indices of the kept neurons of one mask row; returns their count."""
    count = 0
    for i in range(mask_row.shape[0]):
        if mask_row[i]:
            out[count] = i
            count += 1
    return count


@njit(cache=True)
def _dropped_rows(mask_row, out):
    """Indices of the dropped neurons of one mask row; returns their count."""
    count = 0
    for i in range(mask_row.shape[0]):
        if not mask_row[i]:
            out[count] = i
            count += 1
    return count


@njit(cache=True, inline="always")
def _unmasked_loss(X, rule, net, work):
    """Loss of the unmasked network of ``rule`` on the data ``net`` (a NetworkData)."""
    n, batch = X.shape[0], net.inputs_t.shape[1]
    f = np.empty((net.outputs, batch), dtype=X.dtype)
    kept = Kept(np.empty((0, batch), dtype=X.dtype), np.empty((0, batch), dtype=np.uint8),
                np.empty(0, dtype=np.int64))
    _forward_sums(X, net, Rows(np.arange(n), n), Weights(1.0, rule.scale, n), kept, f,
                  f[:, :0], work)
    return _loss_value(net.loss, f, net.targets)


@njit(cache=True)
def _run_chunk(X, rule, data, chunk, losses, first_step, work):
    """Advance ``X`` in place by ``chunk.masks.shape[0]`` steps of ``rule`` on the
    :class:`Data` ``data``, the first being step ``first_step`` of the run.

    ``chunk`` is the :class:`Chunk` (masks M and M', minibatch indices, steps to record).
    Where ``chunk.record[k]`` the unmasked train (and validation, if present) loss at the
    parameters before step k is written to ``losses.train[k]``/``losses.validation[k]``
    (:class:`Losses`). ``chunk.record`` may have one entry more than the chunk has steps: if
    it is set, the losses after the last step are recorded there too (a run's final losses
    need no kernel of their own). ``work`` is the run's
    :class:`~meanfield_dropout.kernels.blocks.Workspace`.

    The loss record reuses the step's forward pass: the unmasked predictor is the step's own
    output when nothing is masked forward, and otherwise the unweighted sum of the same pass,
    continued over the dropped neurons after the kept ones, so a record costs about 1 − q of a
    forward pass (a full one for minibatches).

    Returns the first s such that the parameters after s steps are out of range (non-finite
    or beyond the rule's bounds, seen in their output, in the updated rows or in a recorded
    train loss), or -1. Its sign-path copy
    (:func:`~meanfield_dropout.kernels.twins.sign_path_only`) refuses a rule off the sign path.
    """
    n, train = X.shape[0], data.train
    masks, forward_masks, batches, record = chunk
    steps = masks.shape[0]
    train_out, val_out = losses
    K, has_bias, act, loss = train.outputs, train.bias, train.activation, train.loss
    Z, Zt, y = train.inputs, train.inputs_t, train.targets
    d = Z.shape[1]
    full_batch = batches.shape[1] == 0
    batch = Z.shape[0] if full_batch else batches.shape[1]
    forward_kind, backward_kind = rule.forward_mask, rule.backward_mask
    # on the sign path only the signs of the pre-activations are kept
    signs_only = _sign_path(act, K, rule.penalty)
    if SIGN_PATH_ONLY and not signs_only:
        raise ValueError("the sign path's chunk kernel got a rule off the sign path")
    # the backward pass reuses the forward pre-activations when its neurons are a subset
    # and they fit in cache; on the sign path, when they are not (PN, PN + RaM), the
    # signs of the backward neurons the forward pass did not run are added to them
    subset = forward_kind == NO_MASK or forward_kind == backward_kind
    extra = signs_only and not subset
    recompute = not (subset or extra) or not rule.keep_pre
    pre = np.empty((0 if recompute or signs_only else n, batch), dtype=X.dtype)
    signs = np.empty((0 if recompute or not signs_only else n, batch), dtype=np.uint8)
    no_index = np.empty(0, dtype=np.int64)
    f = np.empty((K, batch), dtype=X.dtype)
    residual = np.empty((K, batch), dtype=X.dtype)
    all_rows = np.arange(n)
    # every neuron, unless a mask picks some: an unmasked pass's rows stay all of them
    rows_forward = np.arange(n)
    rows_backward = np.arange(n)
    # where neuron i's signs sit (a forward neuron's rank, then the added neurons')
    position = np.empty(n if extra else 0, dtype=np.int64)
    backward_position = np.empty(n if extra else 0, dtype=np.int64)
    unmasked = np.empty((K, batch), dtype=X.dtype)
    scratch_sums = np.empty((K, batch), dtype=X.dtype)
    no_share = unmasked[:, :0]
    Zb, Ztb, yb = Z, Zt, y
    if not full_batch:
        Zb = np.empty((batch, d), dtype=X.dtype)
        Ztb = np.empty((d, batch), dtype=X.dtype)
        yb = np.empty((K, batch), dtype=X.dtype)
    # the step's (mini)batch: the arrays above, refilled every step
    step_data = NetworkData(Zb, Ztb, yb, K, has_bias, act, loss)
    inverse_keep = 1.0 / rule.keep_prob
    for k in range(steps):
        if not full_batch:
            for j in range(batch):
                for c in range(K):
                    yb[c, j] = y[c, batches[k, j]]
                for c in range(d):
                    Zb[j, c] = Z[batches[k, j], c]
                    Ztb[c, j] = Z[batches[k, j], c]
        count_forward, forward_weight = n, 1.0
        if forward_kind != NO_MASK:
            count_forward = _active_rows(
                masks[k] if forward_kind == DROPOUT_MASK else forward_masks[k], rows_forward)
            forward_weight = inverse_keep
        count_backward, backward_weight = n, 1.0
        if backward_kind != NO_MASK:
            count_backward = _active_rows(masks[k], rows_backward)
            backward_weight = inverse_keep
        # a loss record's unmasked predictor: the dropped neurons go after the kept ones
        # into the plain sum of the same pass (they also hold the backward neurons that a
        # PN forward pass does not run)
        share = record[k] and full_batch and forward_kind != NO_MASK
        count_dropped = 0
        if share:
            count_dropped = _dropped_rows(
                masks[k] if forward_kind == DROPOUT_MASK else forward_masks[k],
                rows_forward[count_forward:])
        _forward_sums(X, step_data, Rows(rows_forward, count_forward + count_dropped),
                      Weights(forward_weight, rule.scale, count_forward),
                      Kept(pre, signs, no_index), f, unmasked if share else no_share, work)
        if not _within(f, rule.output_bound):
            return first_step + k
        if record[k]:
            if forward_kind == NO_MASK and full_batch:
                train_out[k] = _loss_value(loss, f, y)
            elif share:
                train_out[k] = _loss_value(loss, unmasked, y)
            else:
                train_out[k] = _unmasked_loss(X, rule, train, work)
            if data.validation.targets.shape[1] > 0:
                val_out[k] = _unmasked_loss(X, rule, data.validation, work)
            if not math.isfinite(train_out[k]):
                return first_step + k
        _loss_derivative(loss, f, yb, residual)
        # where neuron rows_backward[r] sits in ``pre``: its index (forward over all neurons),
        # its rank (same neurons forward and backward), or nowhere (recompute)
        pre_index = no_index if recompute else (
            rows_backward if forward_kind == NO_MASK else all_rows)
        if extra and not recompute:
            pre_index = backward_position[:count_backward]
            _add_sign_rows(X, rule, step_data, Rows(rows_forward, count_forward),
                           Rows(rows_forward[count_forward:], count_dropped),
                           Rows(rows_backward, count_backward), Kept(pre, signs, pre_index),
                           position, scratch_sums, work)
        _backward_step(X, step_data, Rows(rows_backward, count_backward),
                       Update(rule.master_lr * backward_weight, rule.penalty, residual),
                       Kept(pre, signs, pre_index), X, work)
        if not _rows_within(X, rows_backward, count_backward, rule.parameter_bound):
            return first_step + k + 1
    if record.shape[0] > steps and record[steps]:
        train_out[steps] = _unmasked_loss(X, rule, train, work)
        if data.validation.targets.shape[1] > 0:
            val_out[steps] = _unmasked_loss(X, rule, data.validation, work)
        if not math.isfinite(train_out[steps]):
            return first_step + steps
    return -1


@njit(cache=True, inline="always")
def _add_sign_rows(X, rule, net, forward, added, backward, kept, position, sums, work):
    """Complete the signs kept by a forward pass over other neurons than the backward pass's.

    ``forward``, ``added`` and ``backward`` are :class:`~meanfield_dropout.kernels.structs.Rows`:
    ``kept.signs[:forward.count]`` hold the forward neurons' signs and the rows after them
    those of ``added`` (the dropped neurons, when a loss record ran over them; the rest of
    ``added.index`` is free); the backward neurons in neither get theirs from a forward pass
    over them alone. On return ``kept.index[r]`` is where neuron backward.index[r]'s signs
    sit. ``position`` (n,) and ``sums`` (K, B) are scratch; ``net`` is the step's
    (mini)batch.
    """
    signs, pre_index = kept.signs, kept.index
    first = forward.count + added.count
    position[:] = -1
    for r in range(forward.count):
        position[forward.index[r]] = r
    for r in range(added.count):
        position[added.index[r]] = forward.count + r
    missing = _append_unplaced(backward.index, backward.count, position,
                               added.index[added.count:], first)
    if missing > 0:
        _forward_sums(X, net, Rows(added.index[added.count:], missing),
                      Weights(1.0, rule.scale, missing),
                      Kept(kept.pre[:0], signs[first:], pre_index[:0]), sums, sums[:, :0],
                      work)
    for r in range(backward.count):
        pre_index[r] = position[backward.index[r]]


@njit(cache=True)
def _append_unplaced(rows, count, position, out, first):
    """Append the neurons of ``rows[:count]`` that have no position to ``out``, placing
    them at ``first``, ``first`` + 1, …; returns how many."""
    added = 0
    for r in range(count):
        i = rows[r]
        if position[i] < 0:
            out[added] = i
            position[i] = first + added
            added += 1
    return added


@njit(cache=True)
def _rows_within(X, rows, count, bound):
    """Whether every entry of the rows ``rows[:count]`` of ``X`` is finite and at most
    ``bound`` in absolute value (the rows a step moved)."""
    within = True
    for r in range(count):
        row = X[rows[r]]
        for c in range(row.shape[0]):
            # no early exit within a row: the loop vectorises
            within &= abs(row[c]) <= bound
        if not within:
            return False
    return True


@njit(cache=True)
def _within(values, bound):
    """Whether every entry of ``values`` is finite and at most ``bound`` in absolute value."""
    for v in values.flat:
        if not abs(v) <= bound:
            return False
    return True


def _no_rows(value):
    """``value`` with every array cut to no rows, a struct field by field: the same Numba
    type, nothing to copy."""
    if isinstance(value, np.ndarray):
        return value[:0]
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_no_rows(field) for field in value))
    return value


def chunk_callees(X, rule, data, chunk, losses, first_step, work):
    """The kernels that :func:`_run_chunk` called with these arguments calls, in two groups
    that take about the same time to compile, each kernel with arguments of the types
    ``_run_chunk`` passes it (empty arrays: only their types matter), so that the two groups can
    be compiled in two processes before ``_run_chunk`` itself
    (:func:`meanfield_dropout.runtime.compiling.compile_ahead`).

    The unmasked loss and the signs of the backward neurons that the forward pass did not run
    are inlined into ``_run_chunk`` and compile with it.

    Returns
    -------
    tuple of list
        (the forward pass, the loss, its derivative and the output's range check; the
        backward pass and the step's other small kernels): lists of (kernel, arguments).
    """
    X, train, work = _no_rows(X), _no_rows(data.train), _no_rows(work)
    real, index = X.dtype, np.int64
    rows = Rows(np.empty(0, dtype=index), 0)
    kept = Kept(np.empty((0, 0), dtype=real), np.empty((0, 0), dtype=np.uint8),
                np.empty(0, dtype=index))
    sums = np.empty((0, 0), dtype=real)
    # the plain sums: the unmasked predictor or its view with no columns, hence any layout
    plain = np.empty((2, 4), dtype=real)[:, ::2]
    forward = [(_forward_sums, (X, train, rows, Weights(1.0, rule.scale, 0), kept, sums, plain,
                                work)),
               (_loss_value, (train.loss, sums, train.targets)),
               (_loss_value, (train.loss, sums, data.validation.targets)),
               (_loss_derivative, (train.loss, sums, sums, sums)),
               (_within, (sums, rule.output_bound))]
    mask_row = np.empty(0, dtype=np.bool_)
    backward = [(_backward_step, (X, train, rows, Update(1.0, rule.penalty, sums), kept, X,
                                  work)),
                (_active_rows, (mask_row, rows.index)), (_dropped_rows, (mask_row, rows.index)),
                (_rows_within, (X, rows.index, 0, rule.parameter_bound))]
    return forward, backward
