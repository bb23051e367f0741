"""Clock coupling of the Poisson and critical limits to dropout's keep draws
(:class:`meanfield_dropout.limits.DropoutClock`): the coupled rings are dropout's kept neurons
where the two laws agree, and the coupled limit has the uncoupled limit's law.

Tolerances. Under the null hypothesis (the same law) a difference of two means of R
independent repeats is normal with variance σ₁²/R + σ₂²/R (σ² estimated from the samples);
the tests allow 4 standard errors (two-sided false alarm 6e-5; the seeds are fixed, so the
tests are deterministic). A ring count per particle is Poisson(T/α): mean and variance T/α,
and the sample variance of N counts has standard error sqrt((μ₄ − σ⁴)/N) with
μ₄ = λ(1 + 3λ), λ = T/α.
"""
import math

import numpy as np
import pytest

from meanfield_dropout import ExplicitNoise, init_particles, simulate, teacher_student
from meanfield_dropout.convergence import CellSettings, measure_distances
from meanfield_dropout.limits import DropoutClock, LimitConstants, _CoupledRings, simulate_limit
from meanfield_dropout.network import network_data
from meanfield_dropout.noise import mask_uniforms

DATA = teacher_student(dim=3, data_points=12, teacher_width=3, seed=1)
TRAIN = network_data(DATA.inputs, DATA.targets, activation="tanh")


def test_mask_uniforms_are_dropouts_masks():
    """The engine's masks are U < q for the uniforms of mask_uniforms(seed), in any chunking."""
    width, steps, keep, seed = 12, 9, 0.4, 123
    X0 = init_particles(width, 3, seed=0)
    seeded = simulate(DATA.inputs, DATA.targets, master_lr=0.1, steps=steps, keep_prob=keep,
                      initial=X0, variants=("dropout",), seed=seed, chunk_steps=4,
                      snapshot_steps=[steps])
    masks = mask_uniforms(seed).random((steps, width)) < keep
    explicit = simulate(DATA.inputs, DATA.targets, master_lr=0.1, steps=steps, keep_prob=keep,
                        initial=X0, variants=("dropout",), noise=ExplicitNoise(masks),
                        snapshot_steps=[steps])
    np.testing.assert_array_equal(seeded.snapshots["dropout"], explicit.snapshots["dropout"])


def test_coupled_rings_of_a_step_are_the_kept_neurons():
    """With q = p = 1 − exp(−τ/α), the neurons ringing in a step are exactly dropout's kept ones
    (the maximal coupling); the count per ringing neuron is at least one."""
    width, lr, alpha, seed = 500, 0.2, 0.5, 9
    rings = _CoupledRings(DropoutClock(seed, lr), width, alpha, np.random.SeedSequence(1))
    keep = -math.expm1(-lr / alpha)
    uniforms = mask_uniforms(seed).random((3, width))
    for k in range(3):
        who = rings.rings(k * lr, (k + 1) * lr)
        assert set(who.tolist()) == set(np.flatnonzero(uniforms[k] < keep).tolist())
        assert who.size >= np.count_nonzero(uniforms[k] < keep)


def test_coupled_ring_counts_are_poisson():
    """Rings per particle over [0, T] have the Poisson(T/α) mean and variance (4 s.e.)."""
    width, lr, alpha, horizon = 4000, 0.05, 0.5, 2.0
    rings = _CoupledRings(DropoutClock(5, lr), width, alpha, np.random.SeedSequence(2))
    counts = np.bincount(rings.rings(0.0, horizon), minlength=width)
    lam = horizon / alpha
    assert abs(counts.mean() - lam) < 4 * math.sqrt(lam / width)
    fourth = lam * (1 + 3 * lam)
    assert abs(counts.var(ddof=1) - lam) < 4 * math.sqrt((fourth - lam ** 2) / width)
    # a step holds at least one ring of a particle with probability 1 − exp(−τ/α), and more
    # than one ring in the zero-truncated proportion
    several = _CoupledRings(DropoutClock(5, 0.5), width, alpha, np.random.SeedSequence(3))
    per_step = np.bincount(several.rings(0.0, 0.5), minlength=width)
    p = -math.expm1(-1.0)
    assert abs(np.mean(per_step > 0) - p) < 4 * math.sqrt(p * (1 - p) / width)
    more = 1 - math.exp(-1.0) * 2            # P(count >= 2) of Poisson(1)
    assert abs(np.mean(per_step > 1) - more) < 4 * math.sqrt(more * (1 - more) / width)


@pytest.mark.parametrize("limit,constants", [("jump-poisson", dict(alpha=0.5)),
                                             ("critical", dict(alpha=0.5, beta=1.0))])
def test_coupled_limit_has_the_limits_law(limit, constants):
    """Predictor at T and rings per particle: coupled vs uncoupled means over 24 seeds agree
    within 4 standard errors of their difference."""
    width, lr, repeats, times = 60, 0.05, 24, [0.0, 0.5, 1.0]
    stats = {False: [], True: []}
    for coupled in (False, True):
        for r in range(repeats):
            X0 = init_particles(width, 3, seed=100 + r)
            clock = DropoutClock(1000 + r, lr) if coupled else None
            result = simulate_limit(limit, TRAIN, LimitConstants(**constants), times=times,
                                    initial=X0, seed=r, clock=clock)
            stats[coupled].append(np.concatenate([result.predictor[-1][:4],
                                                  [result.jumps.mean()]]))
    first, second = np.array(stats[False]), np.array(stats[True])
    se = np.sqrt(first.var(axis=0, ddof=1) / repeats + second.var(axis=0, ddof=1) / repeats)
    assert np.all(np.abs(first.mean(axis=0) - second.mean(axis=0)) < 4 * se)


def test_clock_coupling_makes_the_paths_close():
    """On the continuous-jump line (α_n = τ_n/q_n = α), each coupled particle follows its
    neuron: RaM with dropout's own masks (the particle system of the jump limit) is within a
    quarter of the uncoupled RMS parameter distance of the coupled Poisson limit, and dropout
    (which adds its propagation noise, O((n q)^(-1/2))) is nearer too; same initial particles.
    The coupling of N != n particles is refused."""
    width, lr, keep, steps = 300, 0.02, 0.02, 50
    X0 = init_particles(width, 3, seed=4)
    rms = {}
    for coupled in (False, True):
        values = []
        for seed in range(2):
            run = simulate(DATA.inputs, DATA.targets, master_lr=lr, steps=steps,
                           keep_prob=keep, initial=X0, variants=("dropout", "ram"), seed=seed,
                           snapshot_steps=[steps], activation="tanh", progress=False)
            limit = simulate_limit("jump-poisson", TRAIN, LimitConstants(alpha=lr / keep),
                                   times=[0.0, steps * lr], initial=X0, seed=50 + seed,
                                   clock=DropoutClock(seed, lr) if coupled else None)
            values.append([np.sqrt(np.mean(np.sum((run.snapshots[v][-1]
                                                   - limit.snapshots[-1]) ** 2, axis=1)))
                           for v in ("ram", "dropout")])
        rms[coupled] = np.mean(values, axis=0)
    assert rms[True][0] < 0.25 * rms[False][0]
    assert rms[True][1] < rms[False][1]
    settings = CellSettings(["jump-poisson"], 1.0, LimitConstants(alpha=1.0), data=DATA,
                            n_times=3, clock_coupling=True)
    with pytest.raises(ValueError, match="clock_coupling needs limit_particles"):
        measure_distances(width, lr, keep, settings, seed=0, limit_particles=2 * width)


def test_clock_is_refused_for_other_limits_and_off_grid_times():
    with pytest.raises(ValueError, match="jump-poisson and critical"):
        simulate_limit("wgf", TRAIN, times=[0.0, 0.1], limit_particles=5,
                       clock=DropoutClock(0, 0.05))
    with pytest.raises(ValueError, match="multiples"):
        simulate_limit("jump-poisson", TRAIN, LimitConstants(alpha=1.0), times=[0.0, 0.13],
                       limit_particles=5, clock=DropoutClock(0, 0.05))
