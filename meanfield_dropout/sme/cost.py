"""Cost model of the SME runs: their estimated seconds on one core, before they start.

A step of the SME kernels costs a fixed part per replica (small calls, allocations, the
Gaussians) and a part per unit, sample and block entry (m · n · (K + d)); their
floating-point operations alone, at
:data:`~meanfield_dropout.runtime.memory.NOMINAL_RATE`, would be 5–10 times too optimistic
for the widths 4–50 of these runs, so each kernel has the two constants of :data:`KERNELS`,
measured on this project's 2-core Intel Xeon (OpenBLAS SkylakeX kernels, 2026-12-07) over
widths 4–50 and 6–500 samples and on the runs of ``reproduce sme``, warm cache, one core.
The dense Hessian of the alignment is D Hessian–vector products (kernel ``hvp``); the rest of
its dense algebra (covariances, eigendecompositions, the random baseline) is counted in
floating-point operations at :data:`~meanfield_dropout.runtime.memory.NOMINAL_RATE`. The
estimates are fixed functions of the sizes: they do not depend on the machine they run on,
and they exclude compilation.
"""
from ..runtime.memory import NOMINAL_RATE
from ..validation import renamed_keywords

#: Seconds of one replica in one step of each kernel: (fixed, per unit · sample · entry).
#: ``loss`` is one recorded training loss of one replica.
#: ``hvp`` is one Hessian–vector product of L_S (a column of the dense Hessian).
KERNELS = {"dropout": (20e-6, 1.0e-9), "gd": (55e-6, 2.7e-9), "sme1": (10e-6, 4.5e-9),
           "sme2": (20e-6, 8e-9), "loss": (1e-6, 0.1e-9), "hvp": (2e-6, 11e-9)}


def replica_step_seconds(problem, kernel):
    """Estimated seconds of one replica in one step of ``kernel`` (a key of
    :data:`KERNELS`) on ``problem``."""
    fixed, entry = KERNELS[kernel]
    return fixed + entry * problem.width * problem.n_samples * problem.block_size


@renamed_keywords(n_runs="repeats")
def run_seconds(problem, kernel, steps, repeats=1, loss_every=1, substeps=1):
    """Estimated seconds of one core of ``repeats`` replicas over ``steps`` steps of ``kernel``
    (``substeps`` kernel steps each, for an SME), with a loss every ``loss_every`` steps:
    :func:`~meanfield_dropout.sme.simulate_dropout`, :func:`~meanfield_dropout.sme.simulate_sme`
    (kernel ``sme1`` or ``sme2``) and :func:`~meanfield_dropout.sme.simulate_modified_gd`."""
    records = steps // loss_every + 1 + (steps % loss_every > 0)
    return repeats * (steps * substeps * replica_step_seconds(problem, kernel)
                     + records * replica_step_seconds(problem, "loss"))


@renamed_keywords(n_runs="repeats")
def weak_order_seconds(problem, plan, keep_probs, repeats, extrapolate):
    """Estimated seconds of one core of :func:`~meanfield_dropout.sme.weak_error_study`.

    Per keep probability and (η, steps, substeps) of ``plan``: every step a dropout step and
    ``substeps`` steps of both SME orders (and half as many coarse ones with
    ``extrapolate``), for ``repeats`` replicas.
    """
    sme = replica_step_seconds(problem, "sme1") + replica_step_seconds(problem, "sme2")
    per_setting = sum(steps * (replica_step_seconds(problem, "dropout")
                               + substeps * sme * (1.5 if extrapolate else 1.0))
                      for _, steps, substeps in plan)
    return len(keep_probs) * repeats * per_setting


def hessian_seconds(problem):
    """Estimated seconds of one core of the dense Hessian of L_S
    (:func:`~meanfield_dropout.sme.modified_loss_hessian`): D Hessian–vector products."""
    return problem.n_params * replica_step_seconds(problem, "hvp")


def covariance_seconds(problem):
    """Estimated seconds of one core of the exact Σ from its factors
    (:func:`~meanfield_dropout.sme.noise_covariance`): 2 D² (m + m(m − 1)/2) operations."""
    m, D = problem.width, float(problem.n_params)
    return 2 * D * D * (m + m * (m - 1) / 2) / NOMINAL_RATE


def empirical_covariance_seconds(problem, n_masks):
    """Estimated seconds of one core of :func:`~meanfield_dropout.sme.empirical_covariance`:
    ``n_masks`` dropout gradients (kernel ``dropout``) and their covariance, 2 D² per mask."""
    D = float(problem.n_params)
    return n_masks * (replica_step_seconds(problem, "dropout") + 2 * D * D / NOMINAL_RATE)


def sample_noise_seconds(problem, n_draws):
    """Estimated seconds of one core of :func:`~meanfield_dropout.sme.sample_noise`: a draw
    is about the noise part of an order-1 SME step (kernel ``sme1``)."""
    return n_draws * replica_step_seconds(problem, "sme1")


def baseline_seconds(dim, hessian_rank, noise_rank, n_samples):
    """Estimated seconds of one core of :func:`~meanfield_dropout.sme.random_baseline` on
    D = ``dim`` parameters: two symmetric eigendecompositions (10 D³ operations) and per
    sample the cross products and Gram matrices of the random eigenvectors,
    2 D r_H r_Σ + 2 D (r_H² + r_Σ²) operations for the kept eigenvalues r_H, r_Σ."""
    D, r_h, r_s = float(dim), float(hessian_rank), float(noise_rank)
    return (10 * D ** 3 + n_samples * 2 * D * (r_h * r_s + r_h ** 2 + r_s ** 2)) / NOMINAL_RATE


def alignment_seconds(problem, steps, eval_every, n_masks, n_baseline):
    """Estimated seconds of one core of :func:`~meanfield_dropout.sme.alignment_along_training`.

    The dropout run, then at every checkpoint the dense Hessian
    (:func:`hessian_seconds`), the exact covariance (:func:`covariance_seconds`) and the
    empirical one (:func:`empirical_covariance_seconds`); at the last checkpoint the
    random baseline (:func:`baseline_seconds` with r_H = D and r_Σ = min(D, m(m + 1)/2)
    eigenvalues).
    """
    m, D = problem.width, problem.n_params
    checkpoints = steps // eval_every + 1 + (steps % eval_every > 0)
    dense = hessian_seconds(problem) + covariance_seconds(problem) \
        + empirical_covariance_seconds(problem, n_masks)
    baseline = baseline_seconds(D, D, min(D, m * (m + 1) // 2), n_baseline)
    return (run_seconds(problem, "dropout", steps, loss_every=eval_every)
            + checkpoints * dense + baseline)
