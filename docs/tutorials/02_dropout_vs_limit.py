# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. Dropout against its limit as the width grows
#
# Take a scaling n ↦ (τ_n, q_n): here τ_n = 0.5 n^(−1/2) and q_n = 0.7. The theory says
# dropout then converges to the Wasserstein gradient flow (`wgf`, α = β = 0) as n → ∞. Run
# dropout at several widths, the flow from the same initial particles, measure the distance
# between them over the time interval [0, T], and fit how it falls with n. Compare with a
# wrong limit: the Poisson jump with α = 1.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from phase_diagram.convergence import scaling_study

SMALL = os.environ.get("MEANFIELD_DROPOUT_TUTORIAL_SMALL") == "1"
widths = [32, 64] if SMALL else [100, 200, 400, 800]
repeats = 2 if SMALL else 4

# %% [markdown]
# `scaling_study` parses the scaling, classifies it (exactly, with SymPy) and runs a
# convergence study: for every width and repeat, dropout at width n and each limit from the
# same data (a small tanh teacher–student problem) and the same initial particles; it records
# the predictor error (RMS over the data of the difference of the two predictors) and the W2
# distance of the particle clouds at a few times t = k τ_n in [0, T]. `force=True` allows a
# limit other than the scaling's own, here the wrong one, with its constant given by
# `alpha`.

# %%
study, phase = scaling_study("0.5*n**-0.5", "0.7", widths, limits=["wgf", "jump-poisson"],
                             force=True, alpha=1.0, repeats=repeats, horizon=2.0,
                             progress=False)
print("phase of the scaling:", phase)
print("widths:", study.widths, " tau_n:", np.round(study.master_lr, 4),
      " times:", study.times)

# %% [markdown]
# `study.distances[limit][metric]` is an array of shape (repeats, widths, times). The sup
# over time of the predictor error, against the width, on log–log axes:

# %%
fig, ax = plt.subplots(figsize=(6, 4.2))
for name, colour in (("wgf", "tab:blue"), ("jump-poisson", "tab:red")):
    sup = study.distances[name]["predictor"][:, :, 1:].max(axis=2)     # (repeats, widths)
    fit = study.fits[name]["predictor"]
    ax.plot(study.widths, sup.T, ".", color=colour, alpha=0.5)
    ax.plot(study.widths, np.exp(np.log(sup).mean(axis=0)), "-o", color=colour,
            label=f"{name}: slope {fit['slope']:.2f} "
                  f"[{fit['slope_ci'][0]:.2f}, {fit['slope_ci'][1]:.2f}]")
ax.set(xscale="log", yscale="log", xlabel="width n",
       ylabel="sup over t of the predictor error",
       title="dropout along τ_n = 0.5 n^-1/2, q = 0.7")
ax.legend(title="limit: slope [95% CI]")
fig.tight_layout()

# %% [markdown]
# The distance to the flow falls with n (a slope well below zero, its interval too); the
# distance to the wrong limit stays roughly flat: the jumps of size α = 1 are not what
# dropout does when τ_n → 0 with q fixed. The `fits` come from
# `meanfield_dropout.stats.fit_slopes`: one log–log slope per repeat, their mean and its 95%
# Student-t interval.
#
# The distance over time at each width, for the flow:

# %%
fig, ax = plt.subplots(figsize=(6, 4))
mean = study.distances["wgf"]["predictor"].mean(axis=0)               # (widths, times)
for w, n in enumerate(study.widths):
    ax.plot(study.times, mean[w], "-o", label=f"n = {n}")
ax.set(xlabel="time t = k τ_n", ylabel="predictor error to the WGF",
       title="mean over repeats")
ax.legend()
fig.tight_layout()

# %% [markdown]
# The same from the shell, with the figure of the command (one panel per limit):
#
# ```bash
# python -m phase_diagram converge --master-lr "0.5*n**-0.5" --keep-prob "0.7" \
#     --widths 100,200,400,800 --limit wgf --out converge.png
# ```
