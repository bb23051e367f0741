"""Two-layer network with dropout at fixed width, and its modified loss L_S, on the core kernels.

The network of Zhang, Li, Luo & Xu (2024) is f(x; δ) = κ Σ_r δ_r a_r σ(w_r·x) with ``width``
hidden units r (the paper's m), output weights a_r ∈ R^K (one mask entry per unit, shared by
the K outputs), output scale κ and a dropout mask δ_r ∈ {0, 1/p}, p the keep probability. It is
trained on ``n_samples`` points (x_i, y_i) (the paper's n; the engine calls them data points).
Parameters are neuron-major blocks q_r = (a_r, w_r) ∈ R^(K + d), the flat vector
θ = vec(q_1, ..., q_m) has length D = m (K + d), and a bias is a constant input column.

These blocks ARE the particles of :mod:`meanfield_dropout.kernels.core` without a bias: ``blocks`` of
shape (width, K + d), φ_r = a_r σ(w_r·x) (the SME's φ_{r,i} is κ times core's φ), and
the arithmetic is the core's:

* f(·; δ) = κ (1/p) Σ_{r kept} φ_r is :func:`~meanfield_dropout.kernels.core._forward` on the kept
  rows with mask weight 1/p and scale κ;
* ∇_{q_r} R^drop(θ; δ) = κ δ_r Dφ_rᵀ r with r = (f(·; δ) − y)/n
  (:func:`~meanfield_dropout.kernels.core._loss_derivative`), i.e. the core backward with step −κδ_r;
* with c = (1 − p)/p, ∇_{q_r} L_S = (1/n) Σ_i J_{r,i}ᵀ (e_i + c φ_{r,i}) = κ Dφ_rᵀ(r + cκ φ_r/n),
  the core backward with the per-neuron penalty λ = cκ;
* L_S = R_S + (c/2n) Σ_i Σ_r |φ_{r,i}|², the core's penalised loss with scale κ and penalty λ.

R_S = (1/2n) Σ_i |f(x_i) − y_i|² and E_δ[∇R^drop] = ∇L_S exactly. The kernels are in
:mod:`meanfield_dropout.kernels.sme_model`.
"""
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from ..validation import check_array, check_choice, check_int, check_keep_prob, check_positive
from ..kernels.core import _predict
from ..network import NetworkData, inputs_data, network_data, output_scale_factor
from ..runtime.threads import kernel_threads
from ..kernels.sme_model import _dropout_update, _gradient, _modified_loss
from ..kernels.twins import for_run

#: Output scales κ by name: the paper's κ = 1 (the engine's ``standard``), 1/√m, and 1/m (the
#: engine's ``mean_field``), m the width.
OUTPUT_SCALES = ("1", "1/sqrt(m)", "1/m")
_ENGINE_SCALES = {"1": "standard", "1/m": "mean_field"}


class _Net(NamedTuple):
    """A :class:`DropoutProblem` as the core kernels read it (bias-free particles)."""

    data: NetworkData       # Z, Zᵀ, output-major y, K, σ's code (no bias, square loss)
    scale: float            # κ
    variance: float         # c = (1 − p)/p
    penalty: float          # λ = cκ
    inverse_keep: float     # 1/p


@dataclass(frozen=True, eq=False)
class DropoutProblem:
    """Data and architecture of a dropout-trained two-layer network (validated once).

    Build it with :func:`make_problem`. Attributes ``inputs`` (n_samples, d) and ``targets``
    (n_samples, K) are float64 arrays; ``width`` is m, ``keep_prob`` is p, ``output_scale``
    names κ.
    """

    inputs: np.ndarray
    targets: np.ndarray
    width: int
    keep_prob: float
    output_scale: str
    activation: str

    @property
    def n_samples(self):
        """n, the number of training samples."""
        return self.inputs.shape[0]

    @property
    def input_dim(self):
        """d, the input dimension (a bias is a constant input column)."""
        return self.inputs.shape[1]

    @property
    def output_dim(self):
        """K, the output dimension."""
        return self.targets.shape[1]

    @property
    def block_size(self):
        """K + d, the size of one neuron's block q_r = (a_r, w_r)."""
        return self.output_dim + self.input_dim

    @property
    def n_params(self):
        """D = m (K + d), the number of parameters."""
        return self.width * self.block_size

    @property
    def kappa(self):
        """The output scale κ as a number."""
        if self.output_scale in _ENGINE_SCALES:
            return output_scale_factor(_ENGINE_SCALES[self.output_scale], self.width)
        return self.width ** -0.5

    @property
    def penalty(self):
        """c = (1 - p)/p, the variance of one mask entry and the penalty weight."""
        return (1.0 - self.keep_prob) / self.keep_prob

    @cached_property
    def _net(self):
        """The problem as the kernels read it (:class:`_Net`)."""
        kappa, c = self.kappa, self.penalty
        return _Net(network_data(self.inputs, self.targets, activation=self.activation), kappa,
                    c, c * kappa, 1.0 / self.keep_prob)

    def blocks(self, params, name="params"):
        """Validate a flat parameter vector of length D and return its (m, K + d) view."""
        params = check_array(params, name, 1, shape=(self.n_params,))
        return params.reshape(self.width, self.block_size)

    def with_data(self, inputs, targets):
        """The same network and dropout on other data (e.g. a test set)."""
        return make_problem(inputs, targets, self.width, self.keep_prob, self.output_scale,
                            self.activation)

    def with_keep_prob(self, keep_prob):
        """The same network and data with another keep probability p."""
        return make_problem(self.inputs, self.targets, self.width, keep_prob,
                            self.output_scale, self.activation)


def make_problem(inputs, targets, width, keep_prob, output_scale="1", activation="tanh"):
    """Validate data and architecture and bundle them.

    Parameters
    ----------
    inputs : array_like, shape (n_samples, d)
        Inputs x_i (append a column of ones for a bias).
    targets : array_like, shape (n_samples,) or (n_samples, K)
        Targets y_i; a 1-D array means scalar output (K = 1).
    width : int
        m, the number of hidden units (>= 1).
    keep_prob : float
        p in (0, 1], the probability of keeping a unit (the SME paper's "dropout rate" p).
    output_scale : {"1", "1/sqrt(m)", "1/m"}
        κ; "1" is the SME paper's un-normalised network.
    activation : str
        Activation name (see :mod:`meanfield_dropout.kernels.activations`); tanh by default since
        the SME theorem needs σ in C^6.

    Returns
    -------
    DropoutProblem
    """
    data = network_data(inputs, targets, activation=activation)
    if data.inputs.shape[1] < 1:
        raise ValueError(f"inputs must have at least one column, got shape {data.inputs.shape}")
    width = check_int(width, "width", low=1)
    keep_prob = check_keep_prob(keep_prob)
    check_choice(output_scale, "output_scale", OUTPUT_SCALES)
    return DropoutProblem(data.inputs, np.ascontiguousarray(data.targets.T), width, keep_prob,
                          output_scale, activation)


def init_params(problem, seed=0, input_weight_std=0.1, output_weight_std=None):
    """Gaussian initialisation θ_0, flat and neuron-major.

    w_r ~ N(0, input_weight_std^2 / d I) and a_r ~ N(0, output_weight_std^2 I), with default
    output_weight_std = 0.1 / (κ √m) so that the initial output is small for every output
    scale. The initialisation of Zhang, Li, Luo & Xu (2024) is only in their Appendix A; this
    small initialisation is a documented choice that keeps dropout with η ~ 0.2, p = 0.3
    stable on the pooled digits.

    Parameters
    ----------
    problem : DropoutProblem
    seed : int
        Seed of the initialisation.
    input_weight_std, output_weight_std : float
        Scales of w and a (positive).

    Returns
    -------
    ndarray, shape (D,)
    """
    input_weight_std = check_positive(input_weight_std, "input_weight_std")
    if output_weight_std is None:
        output_weight_std = 0.1 / (problem.kappa * np.sqrt(problem.width))
    output_weight_std = check_positive(output_weight_std, "output_weight_std")
    rng = np.random.default_rng(np.random.SeedSequence(check_int(seed, "seed", low=0)))
    K, d = problem.output_dim, problem.input_dim
    blocks = np.empty((problem.width, K + d))
    blocks[:, :K] = output_weight_std * rng.standard_normal((problem.width, K))
    blocks[:, K:] = input_weight_std / np.sqrt(d) * rng.standard_normal((problem.width, d))
    return blocks.ravel()


def draw_keep(rng, keep_prob, shape):
    """Keep decisions of dropout masks (True = kept, mask entry 1/p), as the engine draws them."""
    return rng.random(shape) < keep_prob


@contextmanager
def _kernel_threads(problem):
    """The kernel arrays of ``problem``, with the Numba threads of its size and BLAS on one
    thread (:func:`meanfield_dropout.runtime.threads.kernel_threads`)."""
    with kernel_threads(problem.width * problem.n_samples):
        yield problem._net


def _modified_grad(problem, blocks):
    """∇L_S as (width, K + d) blocks of θ's blocks."""
    with _kernel_threads(problem) as net:
        return for_run(_gradient)(net, blocks)


def _mask_groups(mask):
    """Units with a non-zero mask entry grouped by value: (rows, bounds, weights)."""
    kept = np.flatnonzero(mask)
    weights, counts = np.unique(mask[kept], return_counts=True)
    order = np.argsort(mask[kept], kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return kept[order].astype(np.int64), bounds, weights.astype(np.float64)


def dropout_gradient(problem, params, mask):
    """Gradient of the dropout risk R^drop(θ; δ) for one mask.

    Parameters
    ----------
    problem : DropoutProblem
    params : array_like, shape (D,)
        θ, neuron-major.
    mask : array_like, shape (width,)
        δ, entries usually in {0, 1/p}.

    Returns
    -------
    ndarray, shape (D,)
    """
    blocks = problem.blocks(params)
    mask = check_array(mask, "mask", 1, shape=(problem.width,))
    rows, bounds, weights = _mask_groups(mask)
    out = np.zeros_like(blocks)
    with _kernel_threads(problem) as net:
        for_run(_dropout_update)(net, blocks, rows, bounds, weights, -net.scale,
                                 np.empty((problem.width, problem.n_samples)), out)
    return out.ravel()


def modified_loss(problem, params):
    """The modified loss L_S(θ) (scalar)."""
    blocks = problem.blocks(params)
    with _kernel_threads(problem) as net:
        return for_run(_modified_loss)(net, blocks, net.penalty)


def modified_loss_gradient(problem, params):
    """∇L_S(θ), the mean dropout gradient, shape (D,)."""
    return _modified_grad(problem, problem.blocks(params)).ravel()


def empirical_loss(problem, params):
    """The plain quadratic loss R_S(θ) = (1/2n) Σ_i |f(x_i) − y_i|² (no mask)."""
    blocks = problem.blocks(params)
    with _kernel_threads(problem) as net:
        return for_run(_modified_loss)(net, blocks, 0.0)


def predict(problem, params, inputs=None):
    """Outputs f(x) without dropout, shape (n_inputs, K), on ``inputs`` or the training inputs."""
    blocks = problem.blocks(params)
    X = problem.inputs if inputs is None else check_array(
        inputs, "inputs", 2, shape=(None, problem.input_dim))
    with _kernel_threads(problem) as net:
        data = inputs_data(X, net.data.outputs, False, net.data.activation)
        f = for_run(_predict)(blocks, data, net.scale)
    return np.ascontiguousarray(f.T)
