"""Exact Hessian of the modified loss L_S and Hessian-vector products.

With V_ik = e_i + c φ_{k,i} (K-vectors) and J_{k,i} = ∂φ_{k,i}/∂q_k,

    H = (1/n) Σ_i J_iᵀ J_i + (c/n) blockdiag_k(Σ_i J_{k,i}ᵀ J_{k,i})
        + (1/n) blockdiag_k(Σ_i Σ_c V_ik^c ∇²φ^c_{k,i}),

where J_i = [J_{1,i}, ..., J_{m,i}] is the Jacobian of f(x_i) (Zhang, Li, Luo & Xu 2024, for
K outputs). L_S is the core's penalised loss with scale κ and penalty cκ, so H v is
:func:`meanfield_dropout.kernels.second_order._hessian_vector_product` (forward mode, about three gradients,
never a D × D matrix); the dense H is assembled from the products with the unit vectors
(the kernels of :mod:`meanfield_dropout.kernels.sme_model`).
"""
import numpy as np

from ..runtime.memory import announce_cost
from ..validation import check_array
from ..runtime.compiling import run_kernel
from ..kernels.sme_model import _dense_hessian_kernel, _hvp
from .cost import hessian_seconds
from .covariance import MAX_DENSE_PARAMS, check_dense_size
from .model import _kernel_threads


def _dense_hessian(problem, blocks):
    """H of L_S (not symmetrised) for the (width, K + d) blocks of θ."""
    with _kernel_threads(problem) as net:
        return run_kernel(_dense_hessian_kernel, (net, blocks), "sme", blocks.dtype.name)


def hessian_vector_product(problem, params, vector):
    """Exact product H v of the Hessian of L_S at θ with a vector (forward mode).

    Parameters
    ----------
    problem : DropoutProblem
    params, vector : array_like, shape (D,)

    Returns
    -------
    ndarray, shape (D,)
    """
    blocks = problem.blocks(params)
    direction = problem.blocks(check_array(vector, "vector", 1, shape=(problem.n_params,)),
                               "vector")
    out = np.empty_like(blocks)
    with _kernel_threads(problem) as net:
        run_kernel(_hvp, (net, blocks, direction, out), "sme", blocks.dtype.name)
    return out.ravel()


def modified_loss_hessian(problem, params, max_params=MAX_DENSE_PARAMS):
    """Exact Hessian of L_S at θ as a dense symmetric (D, D) matrix.

    Refuses (``ValueError``) when D exceeds ``max_params``; use
    :func:`hessian_vector_product` then.
    """
    check_dense_size(problem, max_params)
    blocks = problem.blocks(params)
    announce_cost(hessian_seconds(problem), f"modified_loss_hessian of D = {problem.n_params}")
    H = _dense_hessian(problem, blocks)
    return 0.5 * (H + H.T)
