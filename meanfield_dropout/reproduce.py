"""Reproduce the papers' experiments as figures: ``python -m meanfield_dropout reproduce``.

One function per experiment, each taking an output directory, a ``quick`` flag and optional
size overrides, and returning the paths it wrote:

* :func:`teacher_student` — the phase-diagram paper's Figure 1 experiment (loss curves, neuron
  trajectories, coupled RMS distance to dropout against the width);
* :func:`images_variants` — dropout and its variants on two digit classes (4 vs 7), logistic
  loss, SGD (the paper's MNIST experiment, on scikit-learn's digits unless an MNIST file is
  given);
* :func:`phase_diagram` — the theoretical phase diagram and the measured scan overlay;
* :func:`convergence` — the five-phase convergence check of dropout to its limits;
* :func:`sme` — the SME paper's loss trajectories, weak orders and Hessian alignment.

Raw results are cached as ``.npz`` beside each figure, so ``replot=True`` (``--replot``)
redraws without recomputing. Quick mode (``--quick``) uses small sizes, finishes in about a
minute per experiment and writes files with a ``_quick`` suffix so that it never overwrites the
full figures. Every experiment prints its wall time.
"""
import json
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ._validate import check_choice, check_int
from .engine import DivergenceError, simulate
from .engine_cli import COLORS, LABELS
from .metrics import coupled_rms
from .parallel import check_workers, run_unordered
from .stats import loglog_fit, mean_interval

FIGURES_DIR = Path(__file__).resolve().parent.parent / "figures"
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"

# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------


def _settings(full, quick_overrides, quick, sizes):
    """Full settings, updated by the quick ones if ``quick``, then by ``sizes``.

    ``sizes`` may only name keys that exist in ``full`` (ValueError otherwise).
    """
    settings = dict(full)
    if quick:
        settings.update(quick_overrides)
    for key, value in (sizes or {}).items():
        if key not in full:
            raise ValueError(f"sizes has an unknown key {key!r}; allowed: {sorted(full)}")
        settings[key] = value
    return settings


def _path(out_dir, stem, quick, ext=".png"):
    suffix = "_quick" if quick else ""
    return Path(out_dir) / f"{stem}{suffix}{ext}"


def _save_cache(path, settings, arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, settings=np.array(json.dumps(settings)), **arrays)


def _load_cache(path):
    if not path.exists():
        raise ValueError(f"replot needs the cached results {path}; run without --replot first")
    with np.load(path, allow_pickle=False) as data:
        settings = json.loads(str(data["settings"]))
        return settings, {key: data[key] for key in data.files if key != "settings"}


def _figure(*args, **kwargs):
    from matplotlib.figure import Figure
    return Figure(*args, **kwargs)


def _simulate_surviving(inputs, targets, variants, **options):
    """:func:`~.engine.simulate` that drops a variant which diverges and runs again.

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


def _report(name, start, paths):
    print(f"{name}: wrote {', '.join(str(p) for p in paths)} "
          f"in {time.perf_counter() - start:.1f} s")


# ---------------------------------------------------------------------------------------------
# 1. teacher-student (phase-diagram paper, Figure 1)
# ---------------------------------------------------------------------------------------------

TEACHER_STUDENT_VARIANTS = ("gd", "dropout", "ram", "pn_ram")
TEACHER_STUDENT_FULL = dict(widths=(200, 500, 1000, 2000, 5000), repeats=10, steps=1000,
                            master_lr=0.5, keep_prob=0.7, dim=20, data_points=500,
                            early_step=100, trajectory_width=5000, trajectory_neurons=3,
                            trajectory_every=5, loss_every=5)
TEACHER_STUDENT_QUICK = dict(widths=(200, 400, 800), repeats=2, steps=200,
                             trajectory_width=800)


def teacher_student(out_dir=FIGURES_DIR, *, quick=False, replot=False, sizes=None, seed=0,
                    progress=True, workers=None):
    """The teacher–student experiment of the phase-diagram paper (its Figure 1).

    d = 20, 500 training and 500 validation points from a 15-unit ReLU teacher, square loss,
    full-batch GD for 1000 steps at master learning rate τ = 0.5 and keep probability q = 0.7
    (phase 4: constant τ and q), widths 200–5000, 10 repeats. One :func:`~.engine.simulate`
    call per (width, repeat) runs GD, dropout, RaM and PN + RaM with shared initialisation and
    masks; its seed is spawned from ``SeedSequence(seed)``. The neuron trajectories come from
    one more call at ``trajectory_width`` with the seed of repeat 0 (the same path, with
    snapshots of the first 3 neurons every 5 steps). A variant that diverges in a run (PN + RaM
    can, at width 200) is left out of that run and counted in the distance legend; the other
    variants keep their paths, since masks and initialisation do not depend on the variants.

    Writes ``teacher_student_loss.png`` (train and validation loss per width),
    ``teacher_student_trajectories.png`` (first two input weights of 3 neurons per variant),
    ``teacher_student_distance.png`` (coupled RMS distance from dropout to each variant against
    the width at step 100 and at the last step, log–log, with fitted slopes) and the raw
    results ``teacher_student.npz``.

    Parameters
    ----------
    out_dir : str or path
        Directory of the outputs.
    quick : bool
        Small settings (widths 200–800, 2 repeats, 200 steps) and ``_quick`` file names.
    replot : bool
        Redraw from the cached ``.npz`` without simulating.
    sizes : dict, optional
        Overrides of :data:`TEACHER_STUDENT_FULL` keys (e.g. ``widths``, ``repeats``,
        ``steps``, ``data_points``), applied after ``quick``.
    seed : int
        Root seed of the repeats and the data (the teacher uses ``seed`` directly).
    progress : bool
        Show a ``tqdm`` bar over the runs.
    workers : int, optional
        Processes running the (width, repeat) runs side by side, one Numba thread each;
        default: one per available core. The results do not depend on it.

    Returns
    -------
    list of pathlib.Path
        The PNG files written.
    """
    from .data import teacher_student as teacher_student_data

    start = time.perf_counter()
    cache = _path(out_dir, "teacher_student", quick, ".npz")
    if replot:
        settings, arrays = _load_cache(cache)
    else:
        settings = _settings(TEACHER_STUDENT_FULL, TEACHER_STUDENT_QUICK, quick, sizes)
        settings["seed"] = check_int(seed, "seed", low=0)
        settings["widths"] = [check_int(w, "widths entry", low=1) for w in settings["widths"]]
        steps = check_int(settings["steps"], "steps", low=1)
        early = min(settings["early_step"], steps)
        settings["early_step"] = early
        if settings["trajectory_width"] not in settings["widths"]:
            raise ValueError(f"sizes['trajectory_width'] must be one of the widths "
                             f"{settings['widths']}, got {settings['trajectory_width']}")
        data = teacher_student_data(dim=settings["dim"], data_points=settings["data_points"],
                                    seed=settings["seed"])
        arrays = _teacher_student_runs(data, settings, progress, check_workers(workers))
        _save_cache(cache, settings, arrays)
    paths = _plot_teacher_student(settings, arrays, out_dir, quick)
    _report("teacher_student", start, paths + [cache])
    return paths


def _teacher_student_runs(data, s, progress, workers):
    """Simulate every (width, repeat) and the trajectory run; returns the cached arrays.

    The runs are independent (each has its own spawned seed) and go to ``workers`` processes,
    widest first; the numbers do not depend on the worker count.
    """
    variants = TEACHER_STUDENT_VARIANTS
    widths, repeats = s["widths"], s["repeats"]
    seeds = np.random.SeedSequence(s["seed"]).spawn(len(widths) * repeats)
    cells = [(w, r) for w in range(len(widths)) for r in range(repeats)]
    # the trajectory run repeats repeat 0 at trajectory_width, with dense snapshots
    cells.append((widths.index(s["trajectory_width"]), None))
    cells.sort(key=lambda cell: -widths[cell[0]])
    tasks = [(data, s, widths[w], seeds[w * repeats + (r or 0)], r is None) for w, r in cells]
    out = {}
    with tqdm(total=sum(widths[w] for w, _ in cells), unit="neuron-run",
              desc="teacher-student", disable=not progress) as bar:
        for index, result in run_unordered(_teacher_student_cell, tasks, workers):
            out[cells[index]] = result
            bar.update(widths[cells[index][0]])

    def pick(key):
        """Array (width, repeat, ...) of one result field over the width × repeat runs."""
        return np.stack([np.stack([out[w, r][key] for r in range(repeats)])
                         for w in range(len(widths))])

    trajectory = out[widths.index(s["trajectory_width"]), None]
    return dict(widths=np.array(widths), loss_steps=out[0, 0]["loss_steps"],
                train_loss=pick("train"), val_loss=pick("val"), diverged=pick("diverged"),
                distance=pick("distance"), distance_steps=np.array([s["early_step"], s["steps"]]),
                trajectory_steps=trajectory["steps"], trajectories=trajectory["trajectories"],
                variants=np.array(variants),
                distance_variants=np.array([v for v in variants if v != "dropout"]))


def _teacher_student_cell(data, s, width, seed, trajectory):
    """One coupled run of the teacher–student variants (a worker task).

    With ``trajectory`` it stores the first ``trajectory_neurons`` neurons every
    ``trajectory_every`` steps and returns ``steps`` and ``trajectories`` (variant, step,
    neuron, parameter); otherwise it returns the recorded losses, which variants diverged,
    and the coupled RMS distance from dropout to each other variant at ``early_step`` and at
    the last step (NaN for a diverged variant).
    """
    variants = TEACHER_STUDENT_VARIANTS
    steps = s["steps"]
    common = dict(keep_prob=s["keep_prob"], master_lr=s["master_lr"], steps=steps,
                  width=width, seed=seed, val_inputs=data.val_inputs,
                  val_targets=data.val_targets, progress=False)
    if trajectory:
        traj_steps = np.unique(np.append(np.arange(0, steps + 1, s["trajectory_every"]), steps))
        run, lost = _simulate_surviving(
            data.inputs, data.targets, variants, snapshot_steps=traj_steps,
            snapshot_neurons=s["trajectory_neurons"], loss_every=steps, **common)
        return dict(steps=traj_steps, trajectories=np.stack(
            [np.full_like(run.snapshots["dropout"], np.nan) if name in lost
             else run.snapshots[name] for name in variants]))
    run, lost = _simulate_surviving(data.inputs, data.targets, variants,
                                    snapshot_steps=[s["early_step"]],
                                    loss_every=s["loss_every"], **common)
    train = np.full((len(variants), run.loss_steps.size), np.nan)
    val = np.full_like(train, np.nan)
    for v, name in enumerate(variants):
        if name not in lost:
            train[v], val[v] = run.train_loss[name], run.val_loss[name]
    others = [v for v in variants if v != "dropout"]
    distance = np.full((len(others), 2), np.nan)
    for o, name in enumerate(others):
        if name not in lost:
            distance[o] = (coupled_rms(run.snapshots["dropout"][0], run.snapshots[name][0]),
                           coupled_rms(run.final["dropout"], run.final[name]))
    return dict(loss_steps=run.loss_steps, train=train, val=val, distance=distance,
                diverged=np.array([name in lost for name in variants]))


def _plot_teacher_student(s, a, out_dir, quick):
    variants = [str(v) for v in a["variants"]]
    widths = a["widths"]
    title = (f"teacher–student: d={s['dim']}, {s['data_points']} points, τ={s['master_lr']}, "
             f"q={s['keep_prob']}, {s['repeats']} repeats")
    # (a) loss curves
    fig = _figure(figsize=(3.2 * len(widths), 6), layout="constrained")
    axes = fig.subplots(2, len(widths), squeeze=False, sharey="row")
    for w, width in enumerate(widths):
        for row, (losses, kind) in enumerate(((a["train_loss"], "train"),
                                              (a["val_loss"], "validation"))):
            ax = axes[row, w]
            for v, name in enumerate(variants):
                if np.isfinite(losses[w, :, v]).any():
                    # GD dashed on top: RaM's loss coincides with it
                    ax.plot(a["loss_steps"], np.nanmean(losses[w, :, v], axis=0),
                            label=LABELS[name], color=COLORS[name],
                            ls="--" if name == "gd" else "-", zorder=3 if name == "gd" else 2)
            ax.set(yscale="log", xlabel="step k", title=f"{kind} loss, n={width}")
            if w == 0:
                ax.set_ylabel("½ mean (f − y)², mean over\nrepeats that did not diverge")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title)
    loss_png = _path(out_dir, "teacher_student_loss", quick)
    fig.savefig(loss_png, dpi=110)

    # (b) neuron trajectories: first two input weights (particle columns 1 and 2)
    traj = a["trajectories"]
    fig = _figure(figsize=(4 * len(variants), 4), layout="constrained")
    axes = fig.subplots(1, len(variants), sharex=True, sharey=True)
    for ax, v, name in zip(axes, range(len(variants)), variants):
        for i in range(traj.shape[2]):
            line, = ax.plot(traj[v, :, i, 1], traj[v, :, i, 2], lw=1, label=f"neuron {i}")
            ax.plot(traj[v, 0, i, 1], traj[v, 0, i, 2], "o", color=line.get_color(), ms=4)
            ax.plot(traj[v, -1, i, 1], traj[v, -1, i, 2], "s", color=line.get_color(), ms=4)
        ax.set(title=LABELS[name], xlabel="input weight w₁", ylabel="input weight w₂")
    axes[0].legend(fontsize=8, title="○ start, □ end", title_fontsize=8)
    fig.suptitle(f"neuron trajectories, n={s['trajectory_width']}, repeat 0, steps 0–"
                 f"{int(a['trajectory_steps'][-1])} (same initialisation and masks)")
    traj_png = _path(out_dir, "teacher_student_trajectories", quick)
    fig.savefig(traj_png, dpi=110)

    # (c) coupled RMS distance to dropout against the width
    from matplotlib.ticker import NullFormatter

    fig = _figure(figsize=(10, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for t, ax in enumerate(axes):
        for o, name in enumerate(str(v) for v in a["distance_variants"]):
            values = a["distance"][:, :, o, t]
            ok = np.isfinite(values).any(axis=1)
            if ok.sum() < 2:
                continue
            mean = np.nanmean(values[ok], axis=1)
            slope = loglog_fit(widths[ok], mean)[0]
            lost = int(np.isnan(values).sum())
            note = f", {lost} diverged run(s) left out" if lost else ""
            print(f"distance dropout–{name} at step {int(a['distance_steps'][t])}: "
                  f"slope {slope:+.2f}, values {np.round(mean, 4)}{note}")
            line, = ax.loglog(widths[ok], mean, "o-", color=COLORS[name],
                              label=f"{LABELS[name]} (slope {slope:+.2f}{note})")
            ax.fill_between(widths[ok], np.nanmin(values[ok], axis=1),
                            np.nanmax(values[ok], axis=1), color=line.get_color(), alpha=0.2)
        ax.set(xlabel="width n", title=f"step {int(a['distance_steps'][t])}")
        ax.set_xticks(widths, [str(width) for width in widths])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    axes[0].set_ylabel("coupled RMS distance to dropout\n(parameter units; mean, min–max band)")
    fig.suptitle(title)
    dist_png = _path(out_dir, "teacher_student_distance", quick)
    fig.savefig(dist_png, dpi=110)
    return [loss_png, traj_png, dist_png]


# ---------------------------------------------------------------------------------------------
# 2. dropout variants on two digit classes (phase-diagram paper, MNIST experiment)
# ---------------------------------------------------------------------------------------------

IMAGES_VARIANTS = ("gd", "dropout", "ram", "pn", "pn_ram")
IMAGES_FULL = dict(keep_probs=(0.6, 0.7, 0.8, 0.9), width=4000, master_lr=0.25, batch_size=64,
                   steps=4000, repeats=10, loss_every=100, test_fraction=0.3)
IMAGES_QUICK = dict(keep_probs=(0.6, 0.9), width=1000, steps=600, repeats=1, loss_every=50)


def image_data(mnist=None, *, test_fraction=0.3, seed=0):
    """Digits 4 (+1) and 7 (−1) as flattened inputs, split into train and test sets.

    Parameters
    ----------
    mnist : str or path, optional
        A local MNIST ``.npz`` archive with ``x_train``/``y_train`` and ``x_test``/``y_test``
        (28×28 images, d = 784, its own train/test split). Without it, scikit-learn's bundled
        8×8 digits (d = 64), split at random.
    test_fraction : float
        Share of the digits images used as test set (ignored for MNIST).
    seed : int
        Seed of the digits split.

    Returns
    -------
    inputs, targets, test_inputs, test_targets : ndarray
    name : str
        Description of the data for figure titles.
    """
    from .data.images import flatten, load_digits, load_mnist, two_class

    if mnist is not None:
        train_images, train_labels = load_mnist(mnist, split="train", pool=1)
        test_images, test_labels = load_mnist(mnist, split="test", pool=1)
        x, y = two_class(train_images, train_labels, pos=4, neg=7)
        x_test, y_test = two_class(test_images, test_labels, pos=4, neg=7)
        return flatten(x, bias=False), y, flatten(x_test, bias=False), y_test, "MNIST 4 vs 7"
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    images, labels = two_class(*load_digits(), pos=4, neg=7)
    inputs = flatten(images, bias=False)
    order = np.random.default_rng(np.random.SeedSequence(seed)).permutation(labels.size)
    n_test = max(1, round(test_fraction * labels.size))
    test, train = order[:n_test], order[n_test:]
    return (inputs[train], labels[train], inputs[test], labels[test],
            "sklearn 8×8 digits 4 vs 7")


def images_variants(out_dir=FIGURES_DIR, *, quick=False, replot=False, sizes=None, seed=0,
                    mnist=None, progress=True, workers=None):
    """Dropout, RaM, PN, PN + RaM and GD on two digit classes with logistic loss and SGD.

    The paper's MNIST experiment: digits 4 (+1) vs 7 (−1), logistic loss, SGD with batches of
    64, width 4000, master learning rate τ = 0.25, keep q ∈ {0.6, 0.7, 0.8, 0.9}; all variants
    share the initialisation, the batches and the masks (one :func:`~.engine.simulate` call
    per (q, repeat); a repeat has the same seed, hence the same initialisation and batches,
    for every q). GD does not depend on q, so it runs once per repeat (with the first q) and is
    drawn as a flat line.

    Default length: 4000 steps instead of the paper's 40 000, with its 10 repeats. On the
    bundled digits there are only 252 training images of the two classes, so 4000 steps of
    batch 64 are already about 1000 epochs (the paper's 40 000 steps on about 12 000 MNIST
    images are about 200 epochs); by then the test risk only creeps down (about 0.011 at step
    1000, 0.007 at step 4000, for every variant). The best risk is then close to the final
    one.

    Writes ``images_variants_best.png`` (best test risk over training against q, mean and
    95% CI over repeats), ``images_variants_history.png`` (test risk against the step for the
    smallest q) and the raw results ``images_variants.npz``.

    Parameters
    ----------
    out_dir : str or path
    quick : bool
        Width 1000, q ∈ {0.6, 0.9}, 600 steps, 1 repeat; ``_quick`` file names.
    replot : bool
        Redraw from the cached ``.npz``.
    sizes : dict, optional
        Overrides of :data:`IMAGES_FULL` keys, applied after ``quick``.
    seed : int
        Root seed of the repeats and of the digits split.
    mnist : str or path, optional
        Local MNIST ``.npz`` archive (see :func:`image_data`).
    progress : bool
    workers : int, optional
        Processes running the (q, repeat) runs side by side; default: one per available
        core. The results do not depend on it.

    Returns
    -------
    list of pathlib.Path
    """
    start = time.perf_counter()
    cache = _path(out_dir, "images_variants", quick, ".npz")
    if replot:
        settings, arrays = _load_cache(cache)
    else:
        settings = _settings(IMAGES_FULL, IMAGES_QUICK, quick, sizes)
        settings["seed"] = check_int(seed, "seed", low=0)
        keep_probs = [float(q) for q in settings["keep_probs"]]
        if not keep_probs:
            raise ValueError("keep_probs must not be empty")
        settings["keep_probs"] = keep_probs
        x, y, x_test, y_test, settings["data"] = image_data(
            mnist, test_fraction=settings["test_fraction"], seed=settings["seed"])
        settings["train_points"], settings["test_points"] = int(y.size), int(y_test.size)
        settings["batch_size"] = min(settings["batch_size"], y.size)
        arrays = _images_runs(x, y, x_test, y_test, settings, progress,
                              check_workers(workers))
        _save_cache(cache, settings, arrays)
    paths = _plot_images(settings, arrays, out_dir, quick)
    _report("images_variants", start, paths + [cache])
    return paths


def _images_runs(x, y, x_test, y_test, s, progress, workers):
    """Run every (q, repeat) on ``workers`` processes; returns the cached arrays."""
    variants = IMAGES_VARIANTS
    keep_probs, repeats = s["keep_probs"], s["repeats"]
    seeds = np.random.SeedSequence(s["seed"]).spawn(repeats)
    cells = [(k, r) for r in range(repeats) for k in range(len(keep_probs))]
    # GD does not depend on q: it runs with the first q only
    tasks = [(x, y, x_test, y_test, s, keep_probs[k], seeds[r],
              variants if k == 0 else tuple(v for v in variants if v != "gd"))
             for k, r in cells]
    out = {}
    with tqdm(total=len(cells), unit="run", desc="images variants",
              disable=not progress) as bar:
        for index, result in run_unordered(_images_cell, tasks, workers):
            out[cells[index]] = result
            bar.update()
    loss_steps, _, _ = out[0, 0]
    shape = (len(keep_probs), repeats, len(variants), loss_steps.size)
    train, test = np.full(shape, np.nan), np.full(shape, np.nan)
    for k, r in sorted(out):            # q index 0 first: it holds GD
        _, train_risk, test_risk = out[k, r]
        for v, name in enumerate(variants):
            if name in train_risk:
                train[k, r, v], test[k, r, v] = train_risk[name], test_risk[name]
            elif name == "gd":  # identical for every q, copied from the first
                train[k, r, v], test[k, r, v] = train[0, r, v], test[0, r, v]
    return dict(keep_probs=np.array(keep_probs), loss_steps=loss_steps, train_risk=train,
                test_risk=test, variants=np.array(variants))


def _images_cell(x, y, x_test, y_test, s, keep_prob, seed, names):
    """One coupled SGD run of ``names`` at keep probability ``keep_prob`` (a worker task).

    Returns the loss steps and, per variant that did not diverge, its train and test risk.
    """
    run, lost = _simulate_surviving(
        x, y, names, width=s["width"], keep_prob=keep_prob, master_lr=s["master_lr"],
        steps=s["steps"], seed=seed, loss="logistic", batch_size=s["batch_size"],
        val_inputs=x_test, val_targets=y_test, loss_every=s["loss_every"], progress=False)
    kept = [name for name in names if name not in lost]
    return (run.loss_steps, {name: run.train_loss[name] for name in kept},
            {name: run.val_loss[name] for name in kept})


def _plot_images(s, a, out_dir, quick):
    variants = [str(v) for v in a["variants"]]
    keep_probs = a["keep_probs"]
    title = (f"{s['data']} ({s['train_points']} train / {s['test_points']} test), logistic "
             f"loss, SGD batch {s['batch_size']}, n={s['width']}, τ={s['master_lr']}, "
             f"{s['steps']} steps, {s['repeats']} repeat(s)")
    best = np.nanmin(a["test_risk"], axis=3)               # (q, repeat, variant); NaN: diverged
    fig = _figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    for v, name in enumerate(variants):
        mean, half = mean_interval(best[:, :, v])
        line, = ax.plot(keep_probs, mean, "o-", label=LABELS[name], color=COLORS[name])
        ax.fill_between(keep_probs, mean - half, mean + half, color=line.get_color(),
                        alpha=0.2)
        print(f"best test risk {name:>8}: " + ", ".join(
            f"q={q:g}: {m:.5f} ± {h:.5f}" for q, m, h in zip(keep_probs, mean, half)))
    ax.set(xlabel="keep probability q", ylabel="best test risk over training\n"
           "(mean logistic loss; mean and 95% CI over repeats)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=8)
    best_png = _path(out_dir, "images_variants_best", quick)
    fig.savefig(best_png, dpi=110)

    fig = _figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    # from 5% of training on, as the paper's figure: the first steps dwarf the differences
    shown = a["loss_steps"] >= 0.05 * a["loss_steps"][-1]
    for v, name in enumerate(variants):
        ax.plot(a["loss_steps"][shown], np.nanmean(a["test_risk"][0, :, v], axis=0)[shown],
                label=LABELS[name], color=COLORS[name])
    ax.set(xlabel="SGD step k", ylabel="test risk (mean logistic loss, mean over repeats)",
           title=f"keep probability q = {keep_probs[0]:g}, steps from 5% of training")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.suptitle(title, fontsize=8)
    history_png = _path(out_dir, "images_variants_history", quick)
    fig.savefig(history_png, dpi=110)
    return [best_png, history_png]


# ---------------------------------------------------------------------------------------------
# 3. phase diagram (theory and measured scan)
# ---------------------------------------------------------------------------------------------

PHASE_SCAN_CONFIG = EXAMPLES_DIR / "phase_scan.toml"
PHASE_FULL = dict(widths=None, repeats=None)
PHASE_QUICK = dict(widths=(32, 64, 128), repeats=2)
SCAN_ROOT = Path(__file__).resolve().parent.parent / "scan_runs"


def phase_diagram(out_dir=FIGURES_DIR, *, quick=False, replot=False, sizes=None, seed=0,
                  scan_dir=None, progress=True):
    """The theoretical phase diagram and, over it, the phases measured by a scan.

    Without ``scan_dir`` the scan of ``examples/phase_scan.toml`` (17 scalings, widths
    64–1024, 3 repeats; about 4 minutes on 2 cores) runs into ``scan_runs/phase`` (resumable:
    finished cells are skipped). Quick mode runs the same 17 scalings at widths 32, 64, 128
    with two repeats into ``scan_runs/phase_quick`` (the tiny ``examples/phase_scan_small.toml``
    uses a synthetic test cell function, so it measures nothing). The scan directory is the raw
    cache: with ``replot`` (or a given ``scan_dir`` that holds a scan) it is only plotted.

    Writes ``phase_diagram_theory.png``, ``phase_diagram.png`` (scan overlay) and
    ``phase_diagram_panels.png`` (distance against width per scaling).

    Parameters
    ----------
    out_dir : str or path
    quick : bool
    replot : bool
        Plot the existing scan directory without scanning.
    sizes : dict, optional
        ``widths`` and ``repeats`` of the scan (override the configuration file).
    seed : int
        Root seed of the scan.
    scan_dir : str or path, optional
        Existing scan directory to plot (no scan is run if it holds a manifest).
    progress : bool

    Returns
    -------
    list of pathlib.Path
    """
    import tomllib

    from phase_diagram.plots import (distance_panels_figure, phase_diagram_figure, save_figure,
                                     theory_figure)
    from phase_diagram.scan import config_from_dict, run_scan, summarize

    start = time.perf_counter()
    theory_png = _path(out_dir, "phase_diagram_theory", quick)
    save_figure(theory_figure(), theory_png)
    settings = _settings(PHASE_FULL, PHASE_QUICK, quick, sizes)
    given = scan_dir is not None
    scan_dir = Path(scan_dir) if given else SCAN_ROOT / ("phase_quick" if quick else "phase")
    has_scan = (scan_dir / "manifest.json").exists()
    if replot and not has_scan:
        raise ValueError(f"replot needs a scan in {scan_dir}; run without --replot first")
    if not (replot or (given and has_scan)):
        with open(PHASE_SCAN_CONFIG, "rb") as handle:
            data = tomllib.load(handle)
        data["seed"] = check_int(seed, "seed", low=0)
        for key in ("widths", "repeats"):
            if settings[key] is not None:
                data[key] = list(settings[key]) if key == "widths" else settings[key]
        run_scan(config_from_dict(data), scan_dir, progress=progress)
    config, results, missing = summarize(scan_dir)
    if missing:
        print(f"warning: {missing} cells of {scan_dir} are not finished")
    overlay_png = _path(out_dir, "phase_diagram", quick)
    panels_png = _path(out_dir, "phase_diagram_panels", quick)
    save_figure(phase_diagram_figure(results), overlay_png)
    save_figure(distance_panels_figure(results, config.statistic), panels_png)
    decided = [r for r in results if r.decision is not None]
    print(f"phase diagram: detected phase agrees with theory for "
          f"{sum(bool(r.agrees) for r in decided)}/{len(decided)} scalings ({scan_dir})")
    paths = [theory_png, overlay_png, panels_png]
    _report("phase_diagram", start, paths)
    return paths


# ---------------------------------------------------------------------------------------------
# 4. convergence of dropout to its limits in the five phases
# ---------------------------------------------------------------------------------------------

CONVERGENCE_FULL = dict(widths=(100, 200, 400, 800, 1600), repeats=5)
CONVERGENCE_QUICK = dict(widths=(100, 200, 400), repeats=2)


def _encode(value):
    """JSON-ready copy of a nested result: arrays become ``{"__array__": list}``."""
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(item) for item in value]
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value):
    """Inverse of :func:`_encode` (lists of arrays come back as lists)."""
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return np.array(value["__array__"], dtype=float)
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def convergence(out_dir=FIGURES_DIR, *, quick=False, replot=False, sizes=None, seed=0,
                progress=True):
    """Distance from dropout to the predicted and to wrong limits in each of the five phases.

    The ``converge --all-phases`` check: for each phase the scaling of
    :data:`~.convergence.PHASE_STUDIES`, widths 100–1600 and 5 repeats (quick: widths 100–400,
    2 repeats), predictor RMS error against each limit (and coupled RMS to RaM and GD in the
    Bernoulli phase), with fitted log–log slopes.

    Writes ``convergence_phases.png`` and the raw results ``convergence_phases.npz``.

    Parameters
    ----------
    out_dir : str or path
    quick, replot : bool
    sizes : dict, optional
        ``widths`` and ``repeats`` overrides.
    seed : int
    progress : bool

    Returns
    -------
    list of pathlib.Path
    """
    from .convergence import PHASE_STUDIES, phase_study, plot_convergence

    start = time.perf_counter()
    cache = _path(out_dir, "convergence_phases", quick, ".npz")
    if replot:
        settings, arrays = _load_cache(cache)
        studies = _decode(json.loads(str(arrays["studies"])))
    else:
        settings = _settings(CONVERGENCE_FULL, CONVERGENCE_QUICK, quick, sizes)
        settings["seed"] = check_int(seed, "seed", low=0)
        widths = [check_int(w, "widths entry", low=1) for w in settings["widths"]]
        studies = []
        for phase in tqdm(PHASE_STUDIES, desc="phases", disable=not progress):
            study = phase_study(phase, widths, repeats=settings["repeats"],
                                seed=settings["seed"], progress=False)
            studies.append({key: value for key, value in study.items() if key != "limits"})
        _save_cache(cache, settings, {"studies": np.array(json.dumps(_encode(studies)))})
    png = _path(out_dir, "convergence_phases", quick)
    plot_convergence(studies, png)
    for study in studies:
        slopes = ", ".join(f"{key} ({name}) {fits[name]['slope']:+.2f}"
                           for key, fits in study["fits"].items() for name in fits)
        print(f"{study['label']}: {slopes}")
    _report("convergence", start, [png, cache])
    return [png]


# ---------------------------------------------------------------------------------------------
# 5. stochastic modified equations (SME paper)
# ---------------------------------------------------------------------------------------------

#: Extra command-line arguments of the SME module's ``sme``, ``sme-order`` and ``alignment``
#: commands (full settings: their defaults, as in the README).
SME_FULL = {"sme": (), "sme-order": (), "alignment": ()}
SME_QUICK = {"sme": ("--width", "20", "--steps", "300", "--trials", "2", "--n-train", "100",
                     "--n-test", "100"),
             "sme-order": ("--runs", "300", "--lrs", "0.4,0.2,0.1", "--keep-probs", "0.7",
                           "--no-extrapolate"),
             "alignment": ("--steps", "300", "--eval-every", "100", "--masks", "50",
                           "--baseline-samples", "20", "--n-train", "100")}
SME_OUTPUTS = {"sme": "sme_loss", "sme-order": "sme_order", "alignment": "sme_alignment"}


def sme(out_dir=FIGURES_DIR, *, quick=False, replot=False, sizes=None, seed=0):
    """The SME paper's figures, made by the ``sme``, ``sme-order`` and ``alignment`` commands.

    Dropout vs order-1 SME vs GD on L_S on digits (``sme_loss.png``), weak-error orders of the
    order-1 and order-2 SMEs (``sme_order.png``) and Hessian–noise alignment along training
    (``sme_alignment.png``); each command writes its raw arrays as ``.npz`` beside the PNG.
    Those commands draw while they compute, so ``replot`` is not available here (ValueError).

    Parameters
    ----------
    out_dir : str or path
    quick : bool
        Tiny settings (:data:`SME_QUICK`) and ``_quick`` file names.
    replot : bool
        Not supported (raises ValueError).
    sizes : dict, optional
        Replacement argument lists per command (keys of :data:`SME_FULL`).
    seed : int

    The SME commands always show their own progress bars.

    Returns
    -------
    list of pathlib.Path
    """
    from .cli import build_parser

    if replot:
        raise ValueError("replot is not available for sme: its commands draw while computing")
    start = time.perf_counter()
    settings = _settings(SME_FULL, SME_QUICK, quick, sizes)
    parser = build_parser()
    paths = []
    for command, stem in SME_OUTPUTS.items():
        png = _path(out_dir, stem, quick)
        args = parser.parse_args([command, *settings[command], "--seed", str(seed),
                                  "--out", str(png)])
        args.run(args)
        paths.append(png)
    _report("sme", start, paths)
    return paths


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------

#: Experiment name -> function; the order of ``reproduce --all``.
EXPERIMENTS = {"teacher_student": teacher_student, "images_variants": images_variants,
               "phase_diagram": phase_diagram, "convergence": convergence, "sme": sme}


def _add_options(parser, names):
    """Options common to all experiments, plus those of the experiments in ``names``."""
    parser.add_argument("--quick", action="store_true",
                        help="small settings (about a minute); outputs get a _quick suffix")
    parser.add_argument("--out-dir", default=str(FIGURES_DIR),
                        help="output directory (default: the repository's figures/)")
    parser.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    if set(names) - {"sme"}:
        parser.add_argument("--replot", action="store_true",
                            help="redraw from the cached .npz results without recomputing")
        parser.add_argument("--no-progress", action="store_true",
                            help="hide tqdm bars (the sme commands always show theirs)")
    if {"teacher_student", "images_variants"} & set(names):
        parser.add_argument("--workers", type=int, default=None,
                            help="teacher_student, images_variants: processes running "
                                 "independent runs (default: one per core); results do not "
                                 "depend on it")
    if "images_variants" in names:
        parser.add_argument("--mnist", metavar="PATH",
                            help="images_variants: local MNIST .npz (x_train/y_train, "
                                 "x_test/y_test) instead of scikit-learn's digits")
    if "phase_diagram" in names:
        parser.add_argument("--scan-dir", metavar="DIR",
                            help="phase_diagram: scan directory to plot (default: run the "
                                 "example scan into scan_runs/)")


def add_commands(subparsers):
    """Register ``reproduce [--all] [--quick] [--replot] [NAME ...]``."""
    p = subparsers.add_parser("reproduce", help="make the papers' figures (see figures/README.md)",
                              description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"experiments to run, from {', '.join(EXPERIMENTS)}")
    p.add_argument("--all", action="store_true", help="run every experiment")
    _add_options(p, EXPERIMENTS)
    p.set_defaults(run=run_reproduce)


def _call(name, args):
    """Run experiment ``name`` with the options parsed into ``args``."""
    options = dict(quick=args.quick, replot=getattr(args, "replot", False), seed=args.seed)
    if name != "sme":
        options["progress"] = not args.no_progress
    if name in ("teacher_student", "images_variants"):
        options["workers"] = args.workers
    if name == "images_variants":
        options["mnist"] = args.mnist
    if name == "phase_diagram":
        options["scan_dir"] = args.scan_dir
    return EXPERIMENTS[name](args.out_dir, **options)


def run_reproduce(args):
    """Handler of ``reproduce``: run the named experiments (or all) in order."""
    if args.all == bool(args.names):
        raise ValueError("give experiment NAMEs or --all (not both)")
    names = list(EXPERIMENTS) if args.all else args.names
    for name in names:
        check_choice(name, "NAME", EXPERIMENTS)
    if args.all and args.replot:
        names.remove("sme")
        print("reproduce: sme has no replot (its commands draw while computing); skipped")
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for name in names:
        _call(name, args)
    print(f"reproduce: {len(names)} experiment(s) in {time.perf_counter() - start:.1f} s")


def script_main(name, argv=None):
    """Entry point of the thin ``figures/NAME.py`` scripts; returns the exit status."""
    from .cli import Parser, dispatch

    check_choice(name, "name", EXPERIMENTS)
    parser = Parser(prog=f"figures/{name}.py",
                    description=EXPERIMENTS[name].__doc__.splitlines()[0])
    _add_options(parser, [name])
    parser.set_defaults(run=lambda args: _run_one(name, args))
    return dispatch(parser.parse_args(argv))


def _run_one(name, args):
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    _call(name, args)
