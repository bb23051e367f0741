"""Figures of the MNIST experiment (re-exported by :mod:`meanfield_dropout.plots`).

Risk and accuracy curves per variant and keep probability with 95% intervals over repeats,
the best test risk against q (the authors' ``fig_best_test_risk``), and the sharpness and
batch sharpness along training beside the test risk.
"""
import numpy as np
from matplotlib.figure import Figure

from ..stats import mean_interval
from .style import COLORS, PAPER_NAMES, variant_label

#: Legend names: each variant's with the authors' name beside it.
LABELS = {name: variant_label(name, PAPER_NAMES) for name in PAPER_NAMES}


def _band(ax, steps, values, name, clip=(-np.inf, np.inf), **style):
    """Mean over repeats (axis 0) with its 95% Student-t interval (clipped to ``clip``)."""
    mean, half = mean_interval(np.moveaxis(values, 0, -1))
    line, = ax.plot(steps, mean, color=COLORS[name], label=LABELS[name], **style)
    if np.isfinite(half).any():
        ax.fill_between(steps, np.clip(mean - half, *clip), np.clip(mean + half, *clip),
                        color=line.get_color(), alpha=0.18, lw=0)
    return mean


def _title(a):
    s = a.settings
    loss = "logistic loss" if s.task == "binary47" else "softmax cross-entropy"
    step = s.master_lr * s.width
    return (f"{a.data}: {a.points['train']} train / {a.points['test']} test, {loss}, SGD "
            f"batch {s.batch_size}, n={s.width}, τ={s.master_lr} (step τn={step:g}), "
            f"{s.steps} steps, {s.repeats} repeat(s); mean and 95% interval over repeats")


def _stem(a):
    return "mnist" if a.settings.task == "binary47" else "mnist_full"


def mnist_figures(result):
    """The figures of an ``MnistResult``.

    Returns
    -------
    dict
        ``mnist_curves`` (test risk and test accuracy against the step, one row per q),
        ``mnist_best`` (best test risk over training, its paired difference to dropout and
        the final test accuracy against q) and,
        when curvature was tracked, ``mnist_sharpness`` (test risk, sharpness, batch
        sharpness without and with masks against the step, one row per tracked q); the
        10-class task's stems start with ``mnist_full``.
    """
    a = result
    stem = _stem(a)
    variants = [str(v) for v in a.variants]
    steps = a.log_steps
    out = {}
    rows = len(a.keep_probs)
    curves = Figure(figsize=(11, 2.9 * rows + 0.6), dpi=100, layout="constrained")
    axes = curves.subplots(rows, 2, squeeze=False, sharex=True)
    shown = steps >= 0.05 * steps[-1]          # the first steps dwarf the differences
    for k, q in enumerate(a.keep_probs):
        for v, name in enumerate(variants):
            _band(axes[k, 0], steps[shown], a.risk["test"][k, :, v][:, shown], name)
            _band(axes[k, 1], steps[shown], a.accuracy["test"][k, :, v][:, shown], name,
                  clip=(0, 1))
        axes[k, 0].set(ylabel=f"q = {q:g}\ntest risk (mean loss)")
        axes[k, 1].set(ylabel="test accuracy")
        for ax in axes[k]:
            ax.grid(alpha=0.3)
    axes[0, 0].set_title("test risk (unmasked network), from 5% of training")
    axes[0, 1].set_title("test accuracy")
    axes[0, 0].legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("SGD step k")
    curves.suptitle(_title(a), fontsize=8)
    out[f"{stem}_curves"] = curves

    best = Figure(figsize=(15, 4.2), dpi=100, layout="constrained")
    ax_risk, ax_diff, ax_acc = best.subplots(1, 3)
    for name, (mean, half) in a.best_test_risk().items():
        line, = ax_risk.plot(a.keep_probs, mean, "o-", color=COLORS[name], label=LABELS[name])
        ax_risk.fill_between(a.keep_probs, mean - half, mean + half, color=line.get_color(),
                             alpha=0.18, lw=0)
        v = variants.index(name)
        acc_mean, acc_half = mean_interval(a.accuracy["test"][:, :, v, -1])
        low, high = np.clip(acc_mean - acc_half, 0, 1), np.clip(acc_mean + acc_half, 0, 1)
        ax_acc.errorbar(a.keep_probs + 0.004 * (v - 2), acc_mean,
                        yerr=np.nan_to_num([acc_mean - low, high - acc_mean]), fmt="o-",
                        color=COLORS[name], label=LABELS[name], capsize=3)
    for name, (mean, half) in a.paired_best_difference().items():
        v = variants.index(name)
        ax_diff.errorbar(a.keep_probs + 0.004 * (v - 2), mean, yerr=np.nan_to_num(half),
                         fmt="o-", color=COLORS[name], label=LABELS[name], capsize=3)
    ax_diff.axhline(0, color=COLORS["dropout"], lw=1.5, label="dropout")
    ax_risk.set(xlabel="keep probability q", ylabel="best test risk over training\n"
                "(min over logged steps, per repeat)", title="best test risk")
    ax_diff.set(xlabel="keep probability q", ylabel="best test risk − dropout's, same repeat",
                title="paired difference to dropout (coupled runs)")
    ax_acc.set(xlabel="keep probability q", ylabel="test accuracy at the last step",
               title="final test accuracy")
    for ax in (ax_risk, ax_diff, ax_acc):
        ax.set_xticks(a.keep_probs)
        ax.grid(alpha=0.3)
    ax_risk.legend(fontsize=8)
    best.suptitle(_title(a), fontsize=8)
    out[f"{stem}_best"] = best

    if a.curvature_steps.size and a.curvature_keep_probs.size:
        out[f"{stem}_sharpness"] = _sharpness_figure(a, variants)
    return out


def _sharpness_figure(a, variants):
    s = a.settings
    eta = s.master_lr * s.width
    rows = len(a.curvature_keep_probs)
    fig = Figure(figsize=(16, 3.6 * rows + 0.6), dpi=100, layout="constrained")
    axes = fig.subplots(rows, 4, squeeze=False, sharex=True)
    cs = a.curvature_steps
    points = s.sharpness_points or a.points["train"]
    for c, q in enumerate(a.curvature_keep_probs):
        k = list(a.keep_probs).index(q)
        for v, name in enumerate(variants):
            _band(axes[c, 0], a.log_steps, a.risk["test"][k, :, v], name)
            for col, key in ((1, "sharpness"), (2, "batch_sharpness"),
                             (3, "masked_batch_sharpness")):
                values = a.curvature[key][c, :, v]
                if np.isfinite(values).any():
                    _band(axes[c, col], cs, values, name, marker="o", ms=3)
        axes[c, 0].set(yscale="log", ylabel=f"q = {q:g}\ntest risk (mean loss)")
        axes[c, 1].set(ylabel="λ_max of ∇²L (train loss)")
        axes[c, 2].set(ylabel="E_B[gᵀHg / ‖g‖²]")
        axes[c, 3].set(ylabel=f"E_B,M[gᵀHg / ‖g‖²], masks q={q:g}")
        for ax in axes[c, 1:]:
            ax.axhline(2 / eta, color="k", ls="--", lw=1, label=f"2/η = {2 / eta:.2g}")
            ax.set_ylim(bottom=0)
        for ax in axes[c]:
            ax.grid(alpha=0.3)
    axes[0, 0].set_title("test risk")
    axes[0, 1].set_title(f"sharpness (Lanczos, ≤{s.lanczos_iterations} warm-started "
                         f"products, {min(points, a.points['train'])} train points)",
                         fontsize=9)
    axes[0, 2].set_title(f"batch sharpness, batch {s.batch_size} "
                         f"({s.batch_sharpness_draws} draws)", fontsize=9)
    axes[0, 3].set_title("batch sharpness with dropout masks", fontsize=9)
    axes[0, 0].legend(fontsize=7)
    axes[0, 1].legend(fontsize=7, handles=axes[0, 1].get_legend_handles_labels()[0][-1:])
    for ax in axes[-1]:
        ax.set_xlabel("SGD step k")
    fig.suptitle(_title(a) + "; GD runs once, with the masks of q = "
                 f"{a.keep_probs[0]:g} for its masked batch sharpness", fontsize=8)
    return fig
