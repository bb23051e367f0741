"""Stochastic modified equations (SMEs) for dropout at fixed width (Zhang, Li, Luo, Xu 2024).

Modules: :mod:`.model` (network, dropout gradient, modified loss L_S), :mod:`.covariance`
(exact Sigma, its factor, matrix-free Gaussian sampler, empirical covariance), :mod:`.hessian`
(exact Hessian of L_S, Hessian-vector products), :mod:`.equations` (dropout, SMEs of order
1 and 2, GD on L_S), :mod:`.weak_order` (weak-error study), :mod:`.alignment`
(Hessian-variance alignment), :mod:`.cost` (the estimated seconds of these runs, printed
before a long one starts). The paper's experiments are in
:mod:`meanfield_dropout.experiments.sme`, their figures in :mod:`meanfield_dropout.plots`.
"""
from .alignment import AlignmentRun, alignment, alignment_along_training, random_baseline
from .covariance import (MAX_DENSE_PARAMS, dropout_gradients, empirical_covariance,
                         noise_covariance, noise_factor, noise_from_normals, sample_noise)
from .equations import (DivergenceError, Trajectories, simulate_dropout, simulate_modified_gd,
                        simulate_sme)
from .hessian import hessian_vector_product, modified_loss_hessian
from .model import (OUTPUT_SCALES, DropoutProblem, dropout_gradient, empirical_loss,
                    init_params, make_problem, modified_loss, modified_loss_gradient, predict)
from .weak_order import WeakOrderResult, weak_error_study

__all__ = [
    "alignment", "alignment_along_training", "AlignmentRun", "random_baseline",
    "MAX_DENSE_PARAMS", "dropout_gradients", "empirical_covariance", "noise_covariance",
    "noise_factor", "noise_from_normals", "sample_noise", "DivergenceError", "Trajectories",
    "simulate_dropout", "simulate_modified_gd", "simulate_sme", "hessian_vector_product",
    "modified_loss_hessian", "OUTPUT_SCALES", "DropoutProblem", "dropout_gradient",
    "empirical_loss", "init_params", "make_problem", "modified_loss", "modified_loss_gradient",
    "predict", "WeakOrderResult", "weak_error_study",
]
