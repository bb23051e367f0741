"""Every figure of ``meanfield_dropout``: functions that take results and return a Figure.

Figures use matplotlib's object API (``matplotlib.figure.Figure``; no ``pyplot`` state, no
backend switching): the caller saves them, e.g. with :func:`save_figure`. Colours and labels
of the variants come from :mod:`.style`.
"""
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from ..validation import check_choice
from ..convergence import METRICS
from ..metrics import coupled_rms
from ..runtime.results import atomic_file
from .style import COLORS, LABELS


def save_figure(fig, path, pdf=False):
    """Save ``fig`` as PNG at ``path`` (and as PDF beside it if ``pdf``); returns the paths.

    Each file is written atomically (:func:`~meanfield_dropout.runtime.results.atomic_file`):
    an interrupted save leaves the previous file, never a half-written one.
    """
    path = Path(path)
    paths = [path] + ([path.with_suffix(".pdf")] if pdf else [])
    for target in paths:
        with atomic_file(target, "wb") as handle:
            fig.savefig(handle, format=target.suffix.lstrip(".") or "png", bbox_inches="tight")
    return paths


def demo_figure(result):
    """Loss curves of the variants of a :class:`~meanfield_dropout.engine.SimulationResult`
    and their coupled RMS distance to dropout (which it must contain)."""
    fig = Figure(figsize=(11, 3.6), dpi=120, layout="constrained")
    ax_train, ax_val, ax_dist = fig.subplots(1, 3)
    for name in result.variants:
        style = dict(label=LABELS[name], color=COLORS[name])
        ax_train.plot(result.loss_steps, result.train_loss[name], **style)
        ax_val.plot(result.loss_steps, result.val_loss[name], **style)
        if name != "dropout":
            dist = [coupled_rms(a, b) for a, b in
                    zip(result.snapshots["dropout"], result.snapshots[name])]
            ax_dist.plot(result.snapshot_steps, dist, **style)
    s = result.settings
    for ax, title in ((ax_train, "train loss"), (ax_val, "validation loss")):
        ax.set(yscale="log", xlabel="step k", ylabel="½ mean (f − y)²", title=title)
        ax.legend()
    ax_dist.set(xlabel="step k", ylabel="coupled RMS distance to dropout",
                title="distance to dropout (same masks)")
    ax_dist.legend()
    fig.suptitle(f"teacher–student, width n={s['width']}, keep q={s['keep_prob']}, "
                 f"master lr τ={s['master_lr']}")
    return fig


def teacher_student_figures(result):
    """The three figures of the teacher–student experiment (a ``TeacherStudentResult``).

    Returns
    -------
    dict
        ``teacher_student_loss`` (train and validation loss per width),
        ``teacher_student_trajectories`` (first two input weights of 3 neurons per variant)
        and ``teacher_student_distance`` (coupled RMS distance from dropout to each variant
        against the width, log–log, with fitted slopes) → Figure.
    """
    s, a = result.settings, result
    variants = [str(v) for v in a.variants]
    widths = a.widths
    title = (f"teacher–student: d={s.dim}, {s.data_points} points, τ={s.master_lr}, "
             f"q={s.keep_prob}, {s.repeats} repeats")
    loss = Figure(figsize=(3.2 * len(widths), 6), dpi=110, layout="constrained")
    axes = loss.subplots(2, len(widths), squeeze=False, sharey="row")
    for w, width in enumerate(widths):
        for row, (losses, kind) in enumerate(((a.train_loss, "train"),
                                              (a.val_loss, "validation"))):
            ax = axes[row, w]
            for v, name in enumerate(variants):
                if np.isfinite(losses[w, :, v]).any():
                    # GD dashed on top: RaM's loss coincides with it
                    ax.plot(a.loss_steps, np.nanmean(losses[w, :, v], axis=0),
                            label=LABELS[name], color=COLORS[name],
                            ls="--" if name == "gd" else "-", zorder=3 if name == "gd" else 2)
            ax.set(yscale="log", xlabel="step k", title=f"{kind} loss, n={width}")
            if w == 0:
                ax.set_ylabel("½ mean (f − y)², mean over\nrepeats that did not diverge")
    axes[0, 0].legend(fontsize=8)
    loss.suptitle(title)

    # neuron trajectories: first two input weights (particle columns 1 and 2)
    traj = a.trajectories
    paths = Figure(figsize=(4 * len(variants), 4), dpi=110, layout="constrained")
    axes = paths.subplots(1, len(variants), sharex=True, sharey=True)
    for ax, v, name in zip(axes, range(len(variants)), variants):
        for i in range(traj.shape[2]):
            line, = ax.plot(traj[v, :, i, 1], traj[v, :, i, 2], lw=1, label=f"neuron {i}")
            ax.plot(traj[v, 0, i, 1], traj[v, 0, i, 2], "o", color=line.get_color(), ms=4)
            ax.plot(traj[v, -1, i, 1], traj[v, -1, i, 2], "s", color=line.get_color(), ms=4)
        ax.set(title=LABELS[name], xlabel="input weight w₁", ylabel="input weight w₂")
    axes[0].legend(fontsize=8, title="○ start, □ end", title_fontsize=8)
    paths.suptitle(f"neuron trajectories, n={s.trajectory_width}, repeat 0, steps 0–"
                   f"{int(a.trajectory_steps[-1])} (same initialisation and masks)")

    distance = Figure(figsize=(10, 4.2), dpi=110, layout="constrained")
    axes = distance.subplots(1, 2, sharey=True)
    curves = a.distance_curves()
    for t, (ax, step) in enumerate(zip(axes, a.distance_steps)):
        for c in (c for c in curves if c["panel"] == t):
            note = f", {c['diverged']} diverged run(s) left out" if c["diverged"] else ""
            line, = ax.loglog(c["widths"], c["mean"], "o-", color=COLORS[c["variant"]],
                              label=f"{LABELS[c['variant']]} (slope {c['slope']:+.2f}{note})")
            ax.fill_between(c["widths"], c["low"], c["high"], color=line.get_color(),
                            alpha=0.2)
        ax.set(xlabel="width n", title=f"step {int(step)}")
        ax.set_xticks(widths, [str(width) for width in widths])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    axes[0].set_ylabel("coupled RMS distance to dropout\n(parameter units; mean, min–max band)")
    distance.suptitle(title)
    return {"teacher_student_loss": loss, "teacher_student_trajectories": paths,
            "teacher_student_distance": distance}


def images_variants_figures(result):
    """The two figures of the digits experiment (an ``ImagesVariantsResult``).

    Returns
    -------
    dict
        ``images_variants_best`` (best test risk over training against q, mean and 95% CI
        over repeats) and ``images_variants_history`` (test risk against the step for the
        smallest q) → Figure.
    """
    s, a = result.settings, result
    title = (f"{a.data} ({a.train_points} train / {a.test_points} test), logistic "
             f"loss, SGD batch {a.batch_size}, n={s.width}, τ={s.master_lr}, "
             f"{s.steps} steps, {s.repeats} repeat(s)")
    best = Figure(figsize=(7, 4.5), dpi=110, layout="constrained")
    ax = best.subplots()
    for name, (mean, half) in a.best_risk().items():
        line, = ax.plot(a.keep_probs, mean, "o-", label=LABELS[name], color=COLORS[name])
        ax.fill_between(a.keep_probs, mean - half, mean + half, color=line.get_color(),
                        alpha=0.2)
    ax.set(xlabel="keep probability q", ylabel="best test risk over training\n"
           "(mean logistic loss; mean and 95% CI over repeats)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    best.suptitle(title, fontsize=8)

    history = Figure(figsize=(7, 4.5), dpi=110, layout="constrained")
    ax = history.subplots()
    # from 5% of training on, as the paper's figure: the first steps dwarf the differences
    shown = a.loss_steps >= 0.05 * a.loss_steps[-1]
    for v, name in enumerate(str(v) for v in a.variants):
        ax.plot(a.loss_steps[shown], np.nanmean(a.test_risk[0, :, v], axis=0)[shown],
                label=LABELS[name], color=COLORS[name])
    ax.set(xlabel="SGD step k", ylabel="test risk (mean logistic loss, mean over repeats)",
           title=f"keep probability q = {a.keep_probs[0]:g}, steps from 5% of training")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    history.suptitle(title, fontsize=8)
    return {"images_variants_best": best, "images_variants_history": history}


def convergence_figure(studies, metric="predictor"):
    """Log–log panels (one per study) of the distance from dropout to each limit vs n.

    Each curve is the mean over repeats of sup_{0<t≤T} distance, with a band of ± one
    standard deviation over repeats; the legend gives the fitted slope and its 95% interval.
    With ``metric="predictor"`` the coupled RMS series (parameter units) are drawn dashed on
    the same axes.

    Parameters
    ----------
    studies : ConvergenceStudy or sequence of ConvergenceStudy
        From :func:`~meanfield_dropout.convergence.convergence_study`.
    metric : {"predictor", "w2"}
        Distance to the limits.
    """
    check_choice(metric, "metric", METRICS)
    studies = list(studies) if isinstance(studies, (list, tuple)) else [studies]
    cols = min(3, len(studies))
    rows = math.ceil(len(studies) / cols)
    fig = Figure(figsize=(5.0 * cols, 4.2 * rows), dpi=120)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[len(studies):]:
        ax.set_visible(False)
    for ax, study in zip(axes.flat, studies):
        for key, metrics in study.distances.items():
            name = "coupled_rms" if key.startswith("coupled_rms/") else metric
            if name == "coupled_rms" and metric != "predictor":
                continue
            summary = np.max(metrics[name][:, :, 1:], axis=2)
            fit = study.fits[key][name]
            mean, sd = summary.mean(axis=0), summary.std(axis=0)
            lo, hi = fit["slope_ci"]
            shown = f"coupled RMS to {key.split('/')[1]}" if name == "coupled_rms" else key
            text = (f"{shown}: slope {fit['slope']:.2f}"
                    + ("" if math.isnan(lo) else f" [{lo:.2f}, {hi:.2f}]"))
            line, = ax.loglog(study.widths, mean, "--" if name == "coupled_rms" else "-",
                              marker="o", label=text)
            ax.fill_between(study.widths, np.maximum(mean - sd, mean * 0.05), mean + sd,
                            color=line.get_color(), alpha=0.2)
        ax.set_title(study.label or "dropout vs limits", fontsize=9)
        ax.set_xlabel("width n")
        ax.set_ylabel({"predictor": "sup_t predictor RMS error (target units)\n"
                                    "dashed: coupled RMS (parameter units)",
                       "w2": "sup_t W2 between clouds (parameter units)"}[metric], fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def _band(ax, times, values, color, label):
    ax.plot(times, values.mean(axis=0), color=color, label=label)
    if values.shape[0] > 1:
        ax.fill_between(times, values.min(axis=0), values.max(axis=0), color=color, alpha=0.2)


def sme_loss_figure(result):
    """Training loss, test loss and test accuracy of dropout, the SME and GD on L_S (a
    ``LossCurves``): mean over runs with a min–max band."""
    s = result.settings
    fig = Figure(figsize=(13, 4), dpi=120, layout="constrained")
    axes = fig.subplots(1, 3)
    for (name, c), color in zip(result.curves.items(), ("C0", "C1", "C2")):
        label = name.replace("L_S", "$L_S$")
        for ax, key in zip(axes, ("train", "test", "accuracy")):
            _band(ax, c["times"], c[key], color, label)
    for ax, label in zip(axes, ("training loss $R_S$", "test loss", "test accuracy")):
        ax.set_xlabel("time t = N η")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    fig.suptitle(f"{s.data}: width m={s.width}, keep p={s.keep_prob}, η={s.lr}, "
                 f"{s.repeats} repeats (mean, min–max band)")
    return fig


def weak_order_figure(result):
    """Log–log weak errors (one panel per SME order) with fitted slopes, of a
    :class:`~meanfield_dropout.sme.weak_order.WeakOrderResult`."""
    fig = Figure(figsize=(10, 4.2), dpi=120, layout="constrained")
    axes = fig.subplots(1, 2)
    colors = [f"C{i}" for i in range(len(result.keep_probs))]
    for o, ax in enumerate(axes):
        for a, p in enumerate(result.keep_probs):
            ax.loglog(result.lrs, result.errors[o, a], "o-", color=colors[a],
                      label=f"p = {p:g}: slope {result.slopes[o, a]:.2f} "
                            f"± {result.slope_errors[o, a]:.2f}")
            ax.loglog(result.lrs, result.floors[o, a], ":", color=colors[a], lw=1)
        ref = result.errors[o, :, -1].max() * (result.lrs / result.lrs[-1]) ** (o + 1)
        ax.loglog(result.lrs, ref, "k--", lw=1, label=f"slope {o + 1} reference")
        ax.set_xticks(result.lrs, [f"{v:g}" for v in result.lrs])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("learning rate η")
        ax.set_ylabel(r"$\|\mathbb{E}\Theta_T - \mathbb{E}\theta_T\|_2$")
        ax.set_title(f"order-{o + 1} SME vs dropout (T = {result.time:g}, "
                     f"h = {result.sde_step:.3g})")
        ax.legend(fontsize=8, title="dotted: Monte Carlo floor", title_fontsize=8)
    return fig


def alignment_figure(result, title=""):
    """α over training (exact and empirical Σ, random baseline) and the loss, of a
    :class:`~meanfield_dropout.sme.alignment.AlignmentRun`."""
    fig = Figure(figsize=(10, 4.2), dpi=120, layout="constrained")
    ax, ax_loss = fig.subplots(1, 2)
    ax.plot(result.times, result.alpha_exact, "o-", label="α, exact Σ")
    ax.plot(result.times, result.alpha_empirical, "s--",
            label=f"α, empirical Σ ({result.n_masks} masks)")
    ax.axhline(result.baseline.mean(), color="k", ls=":",
               label=f"random-eigenvector baseline ({result.baseline.mean():.1e})")
    ax.set_ylim(min(0.0, result.baseline.min()), 1.0)
    ax.set_xlabel("time t = N η")
    ax.set_ylabel(r"$\alpha = \mathrm{Tr}(H\Sigma)/(\|H\|_F\|\Sigma\|_F)$")
    ax.axhline(0.85, color="grey", ls="--", lw=1, label="paper's level, 784-50-50-10 MNIST")
    ax.set_title("Hessian–variance alignment")
    ax.legend(fontsize=8, loc="lower right")
    ax_loss.semilogy(result.times, result.loss)
    ax_loss.set_xlabel("time t = N η")
    ax_loss.set_ylabel("training loss $R_S$")
    ax_loss.set_title("dropout training loss")
    if title:
        fig.suptitle(title)
    return fig


def sme_alignment_figure(result):
    """:func:`alignment_figure` of an ``Alignment`` experiment, titled with its settings."""
    s = result.settings
    return alignment_figure(result.run, title=f"{s.data}, m={s.width}, p={s.keep_prob}, "
                                              f"η={s.lr}, D={result.n_params}")


def sme_order_figure(result):
    """:func:`weak_order_figure` of a ``WeakOrder`` experiment."""
    return weak_order_figure(result.study)


def sme_figures(result):
    """The three figures of the SME experiment (an ``SmeResult``): ``sme_loss``,
    ``sme_order`` and ``sme_alignment`` → Figure."""
    return {"sme_loss": sme_loss_figure(result.loss),
            "sme_order": sme_order_figure(result.order),
            "sme_alignment": sme_alignment_figure(result.alignment)}
