"""Two-layer network with dropout at fixed width, and its modified loss L_S.

The network is f(x; delta) = kappa * sum_r delta_r a_r sigma(w_r . x) with m hidden units,
output a_r in R^K (K = 1 for scalar output; one mask entry per hidden unit, shared across the
K outputs) and dropout mask delta_r in {0, 1/p} with keep probability p (the SME paper's "p").
Parameters are stored neuron-major: block q_r = (a_r, w_r) in R^(K + d), and the flat vector
theta = vec(q_1, ..., q_m) has length D = m (K + d) (see ``shared/theory/sme.md`` section 1).

The loss is quadratic and averaged over samples, R_S = (1/2n) sum_i |f(x_i) - y_i|^2; the
modified loss adds the dropout penalty (1 - p)/(2 p n) sum_i sum_r |phi_{r,i}|^2 with
phi_{r,i} = kappa a_r sigma(w_r . x_i), so that E_delta[grad R^drop] = grad L_S exactly.
"""
from dataclasses import dataclass

import numpy as np
from numba import njit

from .._validate import check_array, check_choice, check_int, check_keep_prob, check_positive
from ..activations import _d2sigma, _dsigma, _sigma, activation_code

#: Output scales kappa, by name: the paper's (no normalisation), NTK-like and mean-field.
OUTPUT_SCALES = ("1", "1/sqrt(m)", "1/m")


@dataclass(frozen=True, eq=False)
class DropoutProblem:
    """Data and architecture of a dropout-trained two-layer network (validated once).

    Build it with :func:`make_problem`. Attributes ``inputs`` (n, d) and ``targets`` (n, K)
    are float64 arrays; ``width`` is m, ``keep_prob`` is p, ``output_scale`` names kappa.
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
        """The output scale kappa as a number."""
        return {"1": 1.0, "1/sqrt(m)": self.width ** -0.5, "1/m": 1.0 / self.width}[
            self.output_scale]

    @property
    def penalty(self):
        """c = (1 - p)/p, the variance of one mask entry and the penalty weight."""
        return (1.0 - self.keep_prob) / self.keep_prob

    @property
    def code(self):
        """Activation kernel code."""
        return activation_code(self.activation)

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
    inputs : array_like, shape (n, d)
        Inputs x_i (append a column of ones for a bias).
    targets : array_like, shape (n,) or (n, K)
        Targets y_i; a 1-D array means scalar output (K = 1).
    width : int
        m, the number of hidden units (>= 1).
    keep_prob : float
        p in (0, 1], the probability of keeping a unit (the SME paper's "dropout rate" p).
    output_scale : {"1", "1/sqrt(m)", "1/m"}
        kappa; "1" is the SME paper's un-normalised network.
    activation : str
        Activation name (see :mod:`meanfield_dropout.activations`); tanh by default since
        the SME theorem needs sigma in C^6.

    Returns
    -------
    DropoutProblem
    """
    inputs = check_array(inputs, "inputs", 2)
    targets = np.asarray(targets)
    if targets.ndim == 1:
        targets = targets[:, None]
    targets = check_array(targets, "targets", 2, shape=(inputs.shape[0], None))
    if inputs.shape[0] < 1 or inputs.shape[1] < 1 or targets.shape[1] < 1:
        raise ValueError(f"inputs and targets must be non-empty, got shapes {inputs.shape} "
                         f"and {targets.shape}")
    width = check_int(width, "width", low=1)
    keep_prob = check_keep_prob(keep_prob)
    check_choice(output_scale, "output_scale", OUTPUT_SCALES)
    activation_code(activation)
    return DropoutProblem(inputs, targets, width, keep_prob, output_scale, activation)


def init_params(problem, seed=0, input_weight_std=0.1, output_weight_std=None):
    """Gaussian initialisation theta_0, flat and neuron-major.

    w_r ~ N(0, input_weight_std^2 / d I) and a_r ~ N(0, output_weight_std^2 I), with default
    output_weight_std = 0.1 / (kappa sqrt(m)) so that the initial output is small for every
    output scale. The SME paper's initialisation is only in its (unseen) Appendix A; this
    small initialisation is a documented choice that keeps dropout with eta ~ 0.2, p = 0.3
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


def draw_masks(rng, keep_prob, shape):
    """Dropout masks with entries 1/p (probability p) or 0, from a numpy Generator."""
    return (rng.random(shape) < keep_prob) / keep_prob


# ----------------------------------------------------------------------------------------
# Kernels. ``blocks`` is the (m, K + d) parameter array; X (n, d); Y (n, K).


@njit(cache=True)
def _activations(X, blocks, K, code):
    """s = sigma(X w^T) and ds = sigma'(X w^T) as (n, m) arrays."""
    pre = np.dot(X, np.ascontiguousarray(blocks[:, K:]).T)
    n, m = pre.shape
    s = np.empty((n, m))
    ds = np.empty((n, m))
    for i in range(n):
        for r in range(m):
            s[i, r] = _sigma(code, pre[i, r])
            ds[i, r] = _dsigma(code, pre[i, r])
    return s, ds


@njit(cache=True)
def _activations2(X, blocks, K, code):
    """s, ds and d2s = sigma''(X w^T) as (n, m) arrays."""
    pre = np.dot(X, np.ascontiguousarray(blocks[:, K:]).T)
    n, m = pre.shape
    s = np.empty((n, m))
    ds = np.empty((n, m))
    d2s = np.empty((n, m))
    for i in range(n):
        for r in range(m):
            s[i, r] = _sigma(code, pre[i, r])
            ds[i, r] = _dsigma(code, pre[i, r])
            d2s[i, r] = _d2sigma(code, pre[i, r])
    return s, ds, d2s


@njit(cache=True)
def _output(s, blocks, K, kappa, mask):
    """f_i = kappa sum_r mask_r a_r s_ir, shape (n, K)."""
    A = blocks[:, :K].copy()
    for r in range(A.shape[0]):
        for k in range(K):
            A[r, k] *= mask[r]
    return kappa * np.dot(s, A)


@njit(cache=True)
def _backprop(X, s, ds, blocks, K, kappa, V):
    """Blocks (1/n) sum_i J_{k,i}^T V[i, k] with J_{k,i} = d phi_{k,i} / d q_k.

    a-part: (kappa/n) sum_i s_ik V_ik; w-part: (kappa/n) sum_i ds_ik (a_k . V_ik) x_i.
    """
    n, m = s.shape
    out = np.zeros((m, blocks.shape[1]))
    coef = np.empty((n, m))
    scale = kappa / n
    for i in range(n):
        for k in range(m):
            dot = 0.0
            for c in range(K):
                out[k, c] += s[i, k] * V[i, k, c]
                dot += blocks[k, c] * V[i, k, c]
            coef[i, k] = ds[i, k] * dot
    out[:, :K] *= scale
    out[:, K:] = scale * np.dot(coef.T, X)
    return out


@njit(cache=True)
def _dropout_grad(X, Y, blocks, K, kappa, code, mask):
    """Gradient of R^drop(theta; mask) as (m, K + d) blocks."""
    s, ds = _activations(X, blocks, K, code)
    res = _output(s, blocks, K, kappa, mask) - Y
    n, m = s.shape
    V = np.empty((n, m, K))
    for i in range(n):
        for k in range(m):
            for c in range(K):
                V[i, k, c] = mask[k] * res[i, c]
    return _backprop(X, s, ds, blocks, K, kappa, V)


@njit(cache=True)
def _drift_coefficients(s, blocks, K, kappa, c_pen, res):
    """V_ik = e_i + c phi_{k,i}, the per-neuron residual whose back-propagation is grad L_S."""
    n, m = s.shape
    V = np.empty((n, m, K))
    for i in range(n):
        for k in range(m):
            for c in range(K):
                V[i, k, c] = res[i, c] + c_pen * kappa * blocks[k, c] * s[i, k]
    return V


@njit(cache=True)
def _modified_grad(X, Y, blocks, K, kappa, code, c_pen):
    """grad L_S as (m, K + d) blocks."""
    s, ds = _activations(X, blocks, K, code)
    res = _output(s, blocks, K, kappa, np.ones(s.shape[1])) - Y
    V = _drift_coefficients(s, blocks, K, kappa, c_pen, res)
    return _backprop(X, s, ds, blocks, K, kappa, V)


@njit(cache=True)
def _modified_loss(X, Y, blocks, K, kappa, code, c_pen):
    """L_S = (1/2n) sum_i |e_i|^2 + (c/2n) sum_i sum_r |phi_{r,i}|^2."""
    s, _ = _activations(X, blocks, K, code)
    res = _output(s, blocks, K, kappa, np.ones(s.shape[1])) - Y
    n, m = s.shape
    pen = 0.0
    for i in range(n):
        for r in range(m):
            for c in range(K):
                phi = kappa * blocks[r, c] * s[i, r]
                pen += phi * phi
    return 0.5 * (np.sum(res * res) + c_pen * pen) / n


def dropout_gradient(problem, params, mask):
    """Gradient of the dropout risk R^drop(theta; delta) for one mask.

    Parameters
    ----------
    problem : DropoutProblem
    params : array_like, shape (D,)
        theta, neuron-major.
    mask : array_like, shape (m,)
        delta, entries usually in {0, 1/p}.

    Returns
    -------
    ndarray, shape (D,)
    """
    blocks = problem.blocks(params)
    mask = check_array(mask, "mask", 1, shape=(problem.width,))
    return _dropout_grad(problem.inputs, problem.targets, blocks, problem.output_dim,
                         problem.kappa, problem.code, mask).ravel()


def modified_loss(problem, params):
    """The modified loss L_S(theta) (scalar)."""
    blocks = problem.blocks(params)
    return _modified_loss(problem.inputs, problem.targets, blocks, problem.output_dim,
                          problem.kappa, problem.code, problem.penalty)


def modified_loss_gradient(problem, params):
    """grad L_S(theta), the mean dropout gradient, shape (D,)."""
    blocks = problem.blocks(params)
    return _modified_grad(problem.inputs, problem.targets, blocks, problem.output_dim,
                          problem.kappa, problem.code, problem.penalty).ravel()


def empirical_loss(problem, params):
    """The plain quadratic loss R_S(theta) = (1/2n) sum_i |f(x_i) - y_i|^2 (no mask)."""
    blocks = problem.blocks(params)
    return _modified_loss(problem.inputs, problem.targets, blocks, problem.output_dim,
                          problem.kappa, problem.code, 0.0)


def predict(problem, params, inputs=None):
    """Network outputs f(x) without dropout, shape (n, K), on ``inputs`` or the training inputs."""
    blocks = problem.blocks(params)
    X = problem.inputs if inputs is None else check_array(
        inputs, "inputs", 2, shape=(None, problem.input_dim))
    s, _ = _activations(X, blocks, problem.output_dim, problem.code)
    return _output(s, blocks, problem.output_dim, problem.kappa, np.ones(problem.width))
