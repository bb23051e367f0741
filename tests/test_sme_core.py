"""The SME module is the core's network: the engine's runs, the core's formulas, NumPy formulas.

Zhang, Li, Luo & Xu's blocks q_r = (a_r, w_r) are the core's bias-free particles; dropout with
keep probability p is the engine's ``dropout`` rule with master_lr ηκ, GD on L_S its
``penalized`` rule with penalty cκ (c = (1 − p)/p). Rounding tolerances come from
``rounding.py`` (twice the running-error bound of one evaluation).
"""
import numpy as np
import pytest

from meanfield_dropout.kernels import core, second_order
from meanfield_dropout import engine
from meanfield_dropout.kernels.activations import activation_code
from meanfield_dropout.kernels.structs import NetworkData
from meanfield_dropout.engine import simulate
from meanfield_dropout.noise import ExplicitNoise
from meanfield_dropout.sme import equations
from meanfield_dropout.sme.hessian import hessian_vector_product, modified_loss_hessian
from meanfield_dropout.sme.model import (dropout_gradient, init_params, make_problem,
                                         modified_loss, modified_loss_gradient)

from . import reference
from . import rounding

U = rounding.U
ENGINE_SCALE = {"1": "standard", "1/m": "mean_field"}


def _problem(K=1, scale="1", activation="tanh", p=0.6, n=7, d=3, m=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, K)) if K > 1 else rng.standard_normal(n)
    prob = make_problem(X, Y, m, p, scale, activation)
    return prob, init_params(prob, seed=seed + 1, input_weight_std=1.0, output_weight_std=1.0)


def _net(prob, scale, penalty):
    """The reference's network arguments for the SME problem (targets output-major)."""
    return (prob.inputs, np.ascontiguousarray(prob.targets.T), prob.output_dim, scale, penalty,
            prob.activation, False, "square")


def _dense_hessian(X, args):
    """Dense core Hessian by products with the unit vectors (for a stability factor)."""
    Z, y, K, scale, penalty, activation, bias, loss = args
    data = NetworkData(Z, np.ascontiguousarray(Z.T), y, K, bias, activation_code(activation),
                       core.LOSSES[loss])
    H = np.empty((X.size, X.size))
    for j, e in enumerate(np.eye(X.size)):
        out = np.empty_like(X)
        second_order._hessian_vector_product(X, e.reshape(X.shape), data, scale, penalty, out)
        H[:, j] = out.ravel()
    return H


def _run_bound(states, keep, lr, args_of):
    """Bound of |run A − run B| after the steps of two runs with the same arithmetic.

    Step k moves the kept rows by −lr g_k; one evaluation errs by at most lr · (gradient
    bound) + 2u(|θ_k| + lr|g_k|) (the product and the subtraction), two by twice that. An
    earlier difference is carried by the step map x ↦ x − lr g(x), whose Jacobian has
    ∞-norm ≤ 1 + lr ‖H_k‖_∞ (H_k the dense Hessian at θ_k), so
    |e_N| ≤ Σ_k ε_k Π_{l>k} (1 + lr ‖H_l‖_∞).
    """
    total = 0.0
    for k in range(len(keep)):
        rows = np.flatnonzero(keep[k])
        X = states[k][rows]
        args = args_of(k)
        g = reference.penalized_gradient(X, *args)
        eps = 2 * (lr * rounding.gradient_bound(X, *args).max()
                   + 2 * U * (np.abs(X).max() + lr * np.abs(g).max()))
        growth = 1 + lr * np.abs(_dense_hessian(X, args)).sum(axis=1).max()
        total = total * growth + eps
    return total


@pytest.mark.parametrize("K,scale", [(1, "1"), (3, "1"), (1, "1/m")])
def test_simulate_dropout_is_the_engines_dropout(K, scale):
    prob, theta = _problem(K=K, scale=scale)
    lr, n_steps, p = 0.05, 20, prob.keep_prob
    keep = np.random.default_rng(3).random((n_steps, 1, prob.width)) < p
    sme = equations.simulate_dropout(prob, theta, lr, n_steps, keep=keep, record_params=True)
    targets = prob.targets[:, 0] if K == 1 else prob.targets
    run = simulate(prob.inputs, targets, master_lr=lr * prob.kappa, steps=n_steps,
                   keep_prob=p, initial=prob.blocks(theta), variants=("dropout",),
                   output_scale=ENGINE_SCALE[scale], noise=ExplicitNoise(keep[:, 0]),
                   activation=prob.activation, progress=False)
    states = sme.params[0].reshape(n_steps + 1, prob.width, -1)
    # the dropout network of mask δ is the network of the kept rows with scale κ/p
    bound = _run_bound(states, keep[:, 0], lr, lambda k: _net(prob, prob.kappa / p, 0.0))
    diff = np.abs(run.final["dropout"] - states[-1]).max()
    assert diff <= bound
    # same kernels, same arguments: in fact identical
    assert diff == 0.0


@pytest.mark.parametrize("K,scale", [(1, "1"), (2, "1/m")])
def test_simulate_modified_gd_is_the_engines_penalized_rule(K, scale):
    prob, theta = _problem(K=K, scale=scale, p=0.4)
    lr, n_steps = 0.05, 20
    sme = equations.simulate_modified_gd(prob, theta, lr, n_steps, record_params=True)
    targets = prob.targets[:, 0] if K == 1 else prob.targets
    run = simulate(prob.inputs, targets, master_lr=lr * prob.kappa, steps=n_steps,
                   initial=prob.blocks(theta), variants=("penalized",),
                   penalty=prob.penalty * prob.kappa, output_scale=ENGINE_SCALE[scale],
                   activation=prob.activation, progress=False)
    states = sme.params[0].reshape(n_steps + 1, prob.width, -1)
    keep = np.ones((n_steps, prob.width), dtype=bool)
    bound = _run_bound(states, keep, lr,
                       lambda k: _net(prob, prob.kappa, prob.penalty * prob.kappa))
    diff = np.abs(run.final["penalized"] - states[-1]).max()
    assert diff <= bound
    assert diff == 0.0


CASES = [(1, "1", "tanh"), (3, "1", "tanh"), (2, "1/sqrt(m)", "softplus"),
         (2, "1/m", "sigmoid")]


@pytest.mark.parametrize("K,scale,activation", CASES)
def test_gradients_and_loss_are_the_core_formulas(K, scale, activation):
    # ∇R^drop = κ δ_r Dφ_rᵀ (f(·; δ) − y)/n, ∇L_S = κ Dφ_rᵀ(r + cκ φ_r/n), L_S = the core's
    # penalised loss with scale κ and penalty cκ, written out with NumPy
    prob, theta = _problem(K=K, scale=scale, activation=activation)
    blocks = prob.blocks(theta)
    kappa, c, p = prob.kappa, prob.penalty, prob.keep_prob
    penalised = _net(prob, kappa, c * kappa)
    assert abs(modified_loss(prob, theta) - reference.penalized_loss(blocks, *penalised)) \
        <= 2 * rounding.loss_bound(blocks, *penalised)
    got = modified_loss_gradient(prob, theta).reshape(blocks.shape)
    want = reference.penalized_gradient(blocks, *penalised)
    assert np.all(np.abs(got - want) <= 2 * rounding.gradient_bound(blocks, *penalised))
    keep = np.arange(prob.width) % 2 == 0
    got = dropout_gradient(prob, theta, keep / p).reshape(blocks.shape)
    dropout = _net(prob, kappa / p, 0.0)  # the kept rows, mask weight 1/p in the scale
    want = np.zeros_like(blocks)
    want[keep] = reference.penalized_gradient(blocks[keep], *dropout)
    assert np.array_equal(got[~keep], want[~keep])
    assert np.all(np.abs(got[keep] - want[keep])
                  <= 2 * rounding.gradient_bound(blocks[keep], *dropout))


@pytest.mark.parametrize("K,scale,activation", CASES)
def test_hessian_matches_the_written_out_sme_formulas(K, scale, activation):
    # tests/reference.py's written-out formulas: H v (forward mode) and the dense
    # H (Gauss-Newton plus block-diagonal terms); tolerance: twice the core HVP's bound
    prob, theta = _problem(K=K, scale=scale, activation=activation)
    blocks = prob.blocks(theta)
    kappa, c = prob.kappa, prob.penalty
    written = (prob.inputs, prob.targets, blocks, K, kappa, activation, c)
    args = _net(prob, kappa, c * kappa)
    v = np.random.default_rng(3).standard_normal(blocks.shape)
    got = hessian_vector_product(prob, theta, v.ravel()).reshape(blocks.shape)
    want = reference.sme_hvp(*written, v)
    assert np.all(np.abs(got - want) <= 2 * rounding.hvp_bound(blocks, v, *args))
    H = modified_loss_hessian(prob, theta)
    bounds = np.stack([rounding.hvp_bound(blocks, e.reshape(blocks.shape), *args).ravel()
                       for e in np.eye(prob.n_params)], axis=1)
    bounds = 0.5 * (bounds + bounds.T)  # H is returned symmetrised
    assert np.all(np.abs(H - reference.sme_hessian(*written)) <= 2 * bounds)


def test_divergence_is_the_engines_error_naming_the_method():
    prob, theta = _problem(p=0.5)
    assert equations.DivergenceError is engine.DivergenceError
    with pytest.raises(engine.DivergenceError, match="'order-1 SME' diverged at step") as info:
        equations.simulate_sme(prob, theta, 1e4, 50)
    assert info.value.variant == "order-1 SME" and 1 <= info.value.step <= 50


def test_explicit_keep_is_the_seeded_draw():
    # the documented stream: keep decisions rng.random((repeats, width)) < p per step
    prob, theta = _problem()
    n_steps, repeats = 6, 3
    rng = np.random.default_rng(np.random.SeedSequence(4).spawn(2)[0])
    keep = np.stack([rng.random((repeats, prob.width)) < prob.keep_prob
                     for _ in range(n_steps)])
    seeded = equations.simulate_dropout(prob, theta, 0.05, n_steps, repeats=repeats, seed=4)
    explicit = equations.simulate_dropout(prob, theta, 0.05, n_steps, repeats=repeats, keep=keep)
    assert np.array_equal(seeded.final, explicit.final)
    with pytest.raises(ValueError, match="keep must be a boolean array of shape"):
        equations.simulate_dropout(prob, theta, 0.05, n_steps, keep=keep)
