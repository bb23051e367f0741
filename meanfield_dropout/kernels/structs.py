"""The small structs the kernels take: the network's data, a pass's rows, what a forward pass
keeps for the backward pass, and the constants of each pass.

Numba types a ``typing.NamedTuple`` of arrays and scalars natively, once per combination of
field types: a struct passed with the same field types (dtype, dimensions and layout of its
arrays) compiles its kernels once.
"""
from typing import NamedTuple

import numpy as np


class NetworkData(NamedTuple):
    """Data and architecture of the two-layer network, as the kernels read them.

    Built and validated once by :func:`meanfield_dropout.network.network_data`; a minibatch
    step builds one for its batch. The particles X (and with them the width n and the output
    scale s) stay apart: a run keeps one state per variant.
    """

    inputs: np.ndarray      # z_j, shape (m, d)
    inputs_t: np.ndarray    # Zᵀ, shape (d, m), C-contiguous
    targets: np.ndarray     # y_j output-major, shape (K, m)
    outputs: int            # K
    bias: bool              # whether a particle ends with a bias b_i
    activation: int         # kernel code of σ
    loss: int               # kernel code of the loss


class Rows(NamedTuple):
    """The neurons a pass runs over: ``index[:count]``, in that order."""

    index: np.ndarray       # neuron indices i (int64)
    count: int              # how many of them the pass runs over


class Weights(NamedTuple):
    """The factors of a forward pass f = scale · ω · Σ_{r < weighted_count} φ(x_i, ·)."""

    weight: float           # ω, the mask weight (1/q on the kept rows of a mask, else 1)
    scale: float            # s, the output scale (1/n in the mean-field scaling)
    weighted_count: int     # the first rows that carry ω; the rows after them only the plain sum


class Kept(NamedTuple):
    """What a forward pass keeps for the backward pass, and where the backward pass finds it.

    A forward pass writes neuron rows[r]'s pre-activations to ``pre[r]`` if ``pre`` has rows
    and their signs to ``signs[r]`` if ``signs`` has rows; the backward pass reads neuron
    rows[r]'s from row ``index[r]``, or recomputes them when ``index`` is empty.
    """

    pre: np.ndarray         # (rows, B) pre-activations u_ij = w_i·z_j + b_i, or no rows
    signs: np.ndarray       # (rows, B) uint8 signs 1[u_ij > 0] (the ReLU sign path), or no rows
    index: np.ndarray       # (count,) int64 row of neuron rows[r] in pre/signs, or empty


class Update(NamedTuple):
    """A masked-row step out_i ← out_i − step · Dφ(x_i)ᵀ e_i, e_i = r + penalty · φ(x_i)/B."""

    step: float             # the step size (τ ω for a masked step, −s for a gradient)
    penalty: float          # λ, the explicit penalty of the modified loss (0 without one)
    residual: np.ndarray    # r = ∂loss/∂f, shape (K, B), carrying the 1/B of the batch mean
