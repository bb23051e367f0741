"""The teacher–student experiment of Chizat, Marion & Yesbay (2025), their Figure 1.

d = 20, 500 training and 500 validation points from a 15-unit ReLU teacher, square loss,
full-batch GD for 1000 steps at master learning rate τ = 0.5 and keep probability q = 0.7
(the Bernoulli-clock phase: constant τ and q), widths 200–5000, 10 repeats. One
:func:`~meanfield_dropout.engine.simulate` call per (width, repeat) runs GD, dropout, RaM and
PN + RaM with shared initialisation and masks; its seed is spawned from
``SeedSequence(seed)``. The neuron trajectories come from one more call at
``trajectory_width`` with the seed of repeat 0 (the same path, with snapshots of the first 3
neurons every 5 steps). A variant that diverges in a run (PN + RaM can, at width 200) is left
out of that run and counted in the distance legend; the other variants keep their paths,
since masks and initialisation do not depend on the variants. ``dtype`` is the precision of
the runs: float64 by default; float32 takes about 0.6 of the time and moves the figure's mean
distances by at most 0.65% (width 200) to 0.04% (width 5000), but not single paths' bits
(README, teacher–student section).
"""
import dataclasses

import numpy as np

from ..runtime import results
from ..validation import check_choice, check_int, seed_sequence
from ..data import teacher_student as teacher_student_data
from ..engine import DivergenceError, simulate
from ..engine_plan import recorded_steps, simulation_cost
from ..metrics import coupled_rms
from ..network import DTYPES
from ..runtime.runner import map_tasks
from ..stats import loglog_fit
from .settings import Settings, int_tuple

VARIANTS = ("gd", "dropout", "ram", "pn_ram")


@results.register
@dataclasses.dataclass(frozen=True)
class TeacherStudentSettings(Settings):
    """Settings of the teacher–student experiment (defaults: the paper's).

    ``early_step`` is the step of the first distance panel (at most ``steps``);
    ``trajectory_width`` must be one of ``widths``. ``seed`` seeds the repeats and the data.
    ``dtype`` ("float64" or "float32") is the precision of the simulations.
    """

    widths: tuple = (200, 500, 1000, 2000, 5000)
    repeats: int = 10
    steps: int = 1000
    master_lr: float = 0.5
    keep_prob: float = 0.7
    dim: int = 20
    data_points: int = 500
    early_step: int = 100
    trajectory_width: int = 5000
    trajectory_neurons: int = 3
    trajectory_every: int = 5
    loss_every: int = 5
    dtype: str = "float64"
    seed: int = 0

    QUICK = dict(widths=(200, 400, 800), repeats=2, steps=200, trajectory_width=800)

    def __post_init__(self):
        check_choice(self.dtype, "dtype", DTYPES)
        steps = check_int(self.steps, "steps", low=1)
        self._set(widths=int_tuple(self.widths, "widths"), steps=steps,
                  repeats=check_int(self.repeats, "repeats", low=1),
                  seed=check_int(self.seed, "seed", low=0),
                  early_step=min(check_int(self.early_step, "early_step", low=0), steps))
        if self.trajectory_width not in self.widths:
            raise ValueError(f"trajectory_width must be one of the widths {list(self.widths)}, "
                             f"got {self.trajectory_width}")


@results.result_class
class TeacherStudentResult:
    """Losses, distances and trajectories of the teacher–student experiment.

    Attributes
    ----------
    settings : TeacherStudentSettings
    widths : ndarray, shape (W,)
    loss_steps : ndarray, shape (L,)
    train_loss, val_loss : ndarray, shape (W, R, V, L)
        Per width, repeat and variant (NaN where the variant diverged).
    diverged : ndarray of bool, shape (W, R, V)
    distance : ndarray, shape (W, R, V - 1, 2)
        Coupled RMS distance from dropout to each other variant at ``distance_steps``.
    distance_steps : ndarray, shape (2,)
        ``early_step`` and the last step.
    trajectory_steps : ndarray, shape (S,)
    trajectories : ndarray, shape (V, S, neurons, p)
        First neurons of the trajectory run.
    variants, distance_variants : ndarray of str
    """

    settings: TeacherStudentSettings
    widths: np.ndarray
    loss_steps: np.ndarray
    train_loss: np.ndarray
    val_loss: np.ndarray
    diverged: np.ndarray
    distance: np.ndarray
    distance_steps: np.ndarray
    trajectory_steps: np.ndarray
    trajectories: np.ndarray
    variants: np.ndarray
    distance_variants: np.ndarray

    def distance_curves(self):
        """The distance-vs-width curves of the figure, one per (step, variant).

        Returns
        -------
        list of dict
            ``panel`` (index into ``distance_steps``), ``step``, ``variant``, ``widths``
            (those with a run that did not diverge), ``mean``, ``low``, ``high`` over
            repeats, the log–log ``slope`` of the mean and ``diverged`` (runs left out);
            curves with fewer than two widths are left out.
        """
        curves = []
        for t, step in enumerate(self.distance_steps):
            for o, name in enumerate(str(v) for v in self.distance_variants):
                values = self.distance[:, :, o, t]
                ok = np.isfinite(values).any(axis=1)
                if ok.sum() < 2:
                    continue
                mean = np.nanmean(values[ok], axis=1)
                curves.append(dict(panel=t, step=int(step), variant=name,
                                   widths=self.widths[ok], mean=mean,
                                   low=np.nanmin(values[ok], axis=1),
                                   high=np.nanmax(values[ok], axis=1),
                                   slope=loglog_fit(self.widths[ok], mean)[0],
                                   diverged=int(np.isnan(values).sum())))
        return curves


def simulate_surviving(inputs, targets, variants, **options):
    """:func:`~meanfield_dropout.engine.simulate` that drops a variant which diverges and runs
    again.

    The masks, batches and initialisation do not depend on the set of variants, so the
    surviving variants follow the same paths as in the full run.

    Returns
    -------
    run : SimulationResult
        Result of the surviving variants.
    diverged : list of str
        Variants left out because they diverged.
    """
    diverged = []
    while True:
        names = tuple(v for v in variants if v not in diverged)
        try:
            return simulate(inputs, targets, variants=names, **options), diverged
        except DivergenceError as exc:
            if exc.variant == "dropout" or len(names) == 1:
                raise
            diverged.append(exc.variant)


def run(settings, *, progress=True, workers=None):
    """Simulate every (width, repeat) and the trajectory run.

    The runs are independent (each has its own spawned seed) and go to ``workers`` processes
    (default: one per available core), widest first, with the estimate of
    :func:`task_seconds` and a bar when ``progress``
    (:func:`~meanfield_dropout.runtime.runner.map_tasks`); the numbers do not depend on the
    worker count.

    Returns
    -------
    TeacherStudentResult
    """
    s = settings
    data = teacher_student_data(dim=s.dim, data_points=s.data_points, seed=s.seed)
    widths, repeats = list(s.widths), s.repeats
    seeds = seed_sequence(s.seed).spawn(len(widths) * repeats)
    cells = [(w, r) for w in range(len(widths)) for r in range(repeats)]
    # the trajectory run repeats repeat 0 at trajectory_width, with dense snapshots
    cells.append((widths.index(s.trajectory_width), None))
    cells.sort(key=lambda cell: -widths[cell[0]])
    tasks = [(data, s, widths[w], seeds[w * repeats + (r or 0)], r is None) for w, r in cells]
    out = dict(zip(cells, map_tasks(_cell, tasks, workers, what="teacher_student",
                                    estimate=lambda: task_seconds(s), progress=progress,
                                    unit="neuron-run", weights=[widths[w] for w, _ in cells])))

    def pick(key):
        """Array (width, repeat, ...) of one result field over the width × repeat runs."""
        return np.stack([np.stack([out[w, r][key] for r in range(repeats)])
                         for w in range(len(widths))])

    trajectory = out[widths.index(s.trajectory_width), None]
    return TeacherStudentResult(
        settings=s, widths=np.array(widths), loss_steps=out[0, 0]["loss_steps"],
        train_loss=pick("train"), val_loss=pick("val"), diverged=pick("diverged"),
        distance=pick("distance"), distance_steps=np.array([s.early_step, s.steps]),
        trajectory_steps=trajectory["steps"], trajectories=trajectory["trajectories"],
        variants=np.array(VARIANTS),
        distance_variants=np.array([v for v in VARIANTS if v != "dropout"]))


def task_seconds(settings):
    """Estimated seconds of one core of each run of :func:`run` (every (width, repeat) and the
    trajectory run): :func:`~meanfield_dropout.engine_plan.simulation_cost` of the four
    coupled variants, full batch, losses on the training and validation points.

    Returns
    -------
    list of float
    """
    s = settings
    runs = [(width, s.loss_every) for width in s.widths for _ in range(s.repeats)]
    runs.append((s.trajectory_width, s.steps))     # losses at the first and last step only
    return [simulation_cost(len(VARIANTS), width, s.steps, s.data_points, s.dim, 1,
                            recorded_steps(s.steps, every).size, 2 * s.data_points)
            for width, every in runs]


def _cell(data, s, width, seed, trajectory):
    """One coupled run of the teacher–student variants (a worker task).

    With ``trajectory`` it stores the first ``trajectory_neurons`` neurons every
    ``trajectory_every`` steps and returns ``steps`` and ``trajectories`` (variant, step,
    neuron, parameter); otherwise it returns the recorded losses, which variants diverged,
    and the coupled RMS distance from dropout to each other variant at ``early_step`` and at
    the last step (NaN for a diverged variant).
    """
    common = dict(keep_prob=s.keep_prob, master_lr=s.master_lr, steps=s.steps, width=width,
                  seed=seed, val_inputs=data.val_inputs, val_targets=data.val_targets,
                  dtype=s.dtype, progress=False)
    if trajectory:
        traj_steps = np.unique(np.append(np.arange(0, s.steps + 1, s.trajectory_every),
                                         s.steps))
        run_, lost = simulate_surviving(
            data.inputs, data.targets, VARIANTS, snapshot_steps=traj_steps,
            snapshot_neurons=s.trajectory_neurons, loss_every=s.steps, **common)
        return dict(steps=traj_steps, trajectories=np.stack(
            [np.full_like(run_.snapshots["dropout"], np.nan) if name in lost
             else run_.snapshots[name] for name in VARIANTS]))
    run_, lost = simulate_surviving(data.inputs, data.targets, VARIANTS,
                                    snapshot_steps=[s.early_step], loss_every=s.loss_every,
                                    **common)
    train = np.full((len(VARIANTS), run_.loss_steps.size), np.nan)
    val = np.full_like(train, np.nan)
    for v, name in enumerate(VARIANTS):
        if name not in lost:
            train[v], val[v] = run_.train_loss[name], run_.val_loss[name]
    others = [v for v in VARIANTS if v != "dropout"]
    distance = np.full((len(others), 2), np.nan)
    for o, name in enumerate(others):
        if name not in lost:
            distance[o] = (coupled_rms(run_.snapshots["dropout"][0], run_.snapshots[name][0]),
                           coupled_rms(run_.final["dropout"], run_.final[name]))
    return dict(loss_steps=run_.loss_steps, train=train, val=val, distance=distance,
                diverged=np.array([name in lost for name in VARIANTS]))


def summary(result):
    """The distance slopes and values, one line per (step, variant)."""
    return [f"distance dropout–{c['variant']} at step {c['step']}: slope {c['slope']:+.2f}, "
            f"values {np.round(c['mean'], 4)}"
            + (f", {c['diverged']} diverged run(s) left out" if c["diverged"] else "")
            for c in result.distance_curves()]
