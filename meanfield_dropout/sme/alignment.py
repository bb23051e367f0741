"""Hessian-variance alignment alpha(theta) = Tr(H Sigma) / (||H||_F ||Sigma||_F) along training.

H is the exact Hessian of the modified loss L_S; Sigma is either the exact covariance of the
dropout gradient (:func:`~.covariance.noise_covariance`) or the sample covariance of dropout
gradients over fresh masks at fixed theta (the paper's D_grad, Section 5.3). The paper's null
model keeps the spectra of H and Sigma and draws eigenvectors as normalised Gaussian vectors.
"""

import numpy as np
from tqdm.auto import tqdm

from ..runtime import results, tables
from ..runtime.memory import announce_cost, announced
from ..validation import check_array, check_int, seed_sequence
from .cost import alignment_seconds, baseline_seconds
from .covariance import check_dense_size, empirical_covariance, noise_covariance
from .equations import simulate_dropout
from .hessian import modified_loss_hessian


def alignment(hessian, covariance):
    """Cosine similarity Tr(H Sigma) / (||H||_F ||Sigma||_F) of two symmetric matrices."""
    hessian = check_array(hessian, "hessian", 2)
    covariance = check_array(covariance, "covariance", 2, shape=hessian.shape)
    if hessian.shape[0] != hessian.shape[1]:
        raise ValueError(f"hessian must be square, got shape {hessian.shape}")
    denom = np.linalg.norm(hessian) * np.linalg.norm(covariance)
    if denom == 0.0:
        raise ValueError("alignment is undefined when H or Sigma is zero")
    return float(np.sum(hessian * covariance) / denom)


def _weighted_gram_norm2(values, Q):
    """||Q diag(values) Q^T||_F^2 = sum_ij v_i v_j (q_i . q_j)^2."""
    gram = Q.T @ Q
    return float(values @ (gram * gram) @ values)


def random_baseline(hessian, covariance, n_samples=100, seed=0, rel_tol=1e-12):
    """The paper's null model: alpha for random matrices with the spectra of H and Sigma.

    Each sample is A = Q1 diag(lambda_H) Q1^T and B = Q2 diag(lambda_Sigma) Q2^T with the
    columns of Q1, Q2 independent Gaussian vectors normalised to unit length (as the paper
    describes; they are not orthogonalised). Eigenvalues with |lambda| <= rel_tol * max |lambda|
    are dropped, which changes nothing but the cost. Once the spectra are known, an
    estimate above :data:`~meanfield_dropout.runtime.memory.ANNOUNCE_SECONDS`
    (:func:`~meanfield_dropout.sme.cost.baseline_seconds`) is printed before the samples.

    Returns
    -------
    ndarray, shape (n_samples,)
        alpha(A, B) for each sample.
    """
    hessian = check_array(hessian, "hessian", 2)
    covariance = check_array(covariance, "covariance", 2, shape=hessian.shape)
    if hessian.shape[0] != hessian.shape[1]:
        raise ValueError(f"hessian must be square, got shape {hessian.shape}")
    n_samples = check_int(n_samples, "n_samples", low=1)
    rng = np.random.default_rng(seed_sequence(seed))
    spectra = []
    for mat in (hessian, covariance):
        lam = np.linalg.eigvalsh(0.5 * (mat + mat.T))
        if not np.any(lam):
            raise ValueError("alignment is undefined when H or Sigma is zero")
        spectra.append(lam[np.abs(lam) > rel_tol * np.abs(lam).max()])
    D = hessian.shape[0]
    announce_cost(baseline_seconds(D, spectra[0].size, spectra[1].size, n_samples),
                  f"random_baseline of {n_samples} samples")
    out = np.empty(n_samples)
    for j in range(n_samples):
        Q = []
        for lam in spectra:
            q = rng.standard_normal((D, lam.size))
            Q.append(q / np.linalg.norm(q, axis=0))
        cross = Q[0].T @ Q[1]
        trace = spectra[0] @ (cross * cross) @ spectra[1]
        norms = [_weighted_gram_norm2(lam, q) for lam, q in zip(spectra, Q)]
        out[j] = trace / np.sqrt(norms[0] * norms[1])
    return out


@results.result_class
class AlignmentRun:
    """Output of :func:`alignment_along_training`.

    Attributes
    ----------
    times : ndarray, shape (n_checkpoints,)
        Times t = N eta of the checkpoints.
    alpha_exact : ndarray
        alpha with the exact Sigma.
    alpha_empirical : ndarray
        alpha with the sample covariance of ``n_masks`` dropout gradients.
    loss : ndarray
        Training loss R_S at the checkpoints.
    baseline : ndarray, shape (n_baseline,)
        Random-eigenvector baseline at the final checkpoint (exact Sigma).
    n_masks : int
    """

    def to_frame(self):
        """The checkpoints as a tidy table (pandas, the ``table`` extra): one row per time;
        columns ``time``, ``alpha_exact``, ``alpha_empirical``, ``loss``."""
        return tables.frame(dict(time=float(t), alpha_exact=float(self.alpha_exact[i]),
                                 alpha_empirical=float(self.alpha_empirical[i]),
                                 loss=float(self.loss[i]))
                            for i, t in enumerate(self.times))

    times: np.ndarray
    alpha_exact: np.ndarray
    alpha_empirical: np.ndarray
    loss: np.ndarray
    baseline: np.ndarray
    n_masks: int


def alignment_along_training(problem, params0, lr, steps, eval_every, n_masks=200,
                             n_baseline=100, seed=0, progress=True):
    """Train with dropout and measure alpha(theta_t) at checkpoints.

    Parameters
    ----------
    problem : DropoutProblem
        D must allow dense D x D matrices (see ``MAX_DENSE_PARAMS``).
    params0 : array_like, shape (D,)
    lr : float
        eta > 0.
    steps : int
        Dropout steps.
    eval_every : int
        Steps between checkpoints (the first is theta_0).
    n_masks : int
        Masks for the empirical covariance (>= 2).
    n_baseline : int
        Samples of the random-eigenvector baseline at the last checkpoint.
    seed : int
    progress : bool
        Show tqdm bars, after the estimated duration on stderr when it exceeds
        :data:`~meanfield_dropout.runtime.memory.ANNOUNCE_SECONDS`
        (:func:`~meanfield_dropout.sme.cost.alignment_seconds`).

    Returns
    -------
    AlignmentRun
    """
    check_dense_size(problem)
    eval_every = check_int(eval_every, "eval_every", low=1)
    n_masks = check_int(n_masks, "n_masks", low=2)
    steps = check_int(steps, "steps", low=1)
    n_baseline = check_int(n_baseline, "n_baseline", low=1)
    if progress:
        announce_cost(alignment_seconds(problem, steps, eval_every, n_masks, n_baseline),
                      f"alignment_along_training: {steps} steps, a checkpoint every "
                      f"{eval_every}")
    seeds = seed_sequence(seed).generate_state(3)
    with announced():           # the run, checkpoints and baseline: the estimate above
        run = simulate_dropout(problem, params0, lr, steps, seed=int(seeds[0]),
                               loss_every=eval_every, record_params=True, progress=progress)
        checkpoints = run.params[0]
        exact = np.empty(len(checkpoints))
        empirical = np.empty(len(checkpoints))
        for j, theta in enumerate(tqdm(checkpoints, desc="alignment", disable=not progress,
                                       leave=False)):
            H = modified_loss_hessian(problem, theta)
            sigma = noise_covariance(problem, theta)
            exact[j] = alignment(H, sigma)
            empirical[j] = alignment(H, empirical_covariance(problem, theta, n_masks,
                                                             seed=int(seeds[1]) + j))
        baseline = random_baseline(H, sigma, n_baseline, seed=int(seeds[2]))
    return AlignmentRun(run.times, exact, empirical, run.loss[0], baseline, n_masks)
