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
# # 4. A scan of your own scalings, as a table
#
# A scan measures the phase of several scalings: for every (scaling, width, repeat) cell it runs
# dropout and the candidate limits and records the distances; a stated rule then decides, for
# each scaling, which limit the distances approach as n grows — or says why it cannot yet.
# Here three scalings of your choice, with the results as a tidy pandas DataFrame (pandas is
# an optional dependency: `pip install pandas`).

# %%
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from phase_diagram.scan import config_from_dict, run_scan, summarize

SMALL = os.environ.get("MEANFIELD_DROPOUT_TUTORIAL_SMALL") == "1"

# %% [markdown]
# The configuration is the same as a TOML scan file (`examples/phase_scan.toml` documents
# every key), here as a dict. `nominal` gives the constants of a candidate limit that the
# scaling leaves undefined (a wrong limit still needs an α or a β to run).

# %%
config = config_from_dict({
    "seed": 7,
    "widths": [32, 64] if SMALL else [64, 128, 256, 512],
    "repeats": 2 if SMALL else 3,
    "horizon": 2.0,
    "limits": ["wgf", "penalized-wgf", "jump-poisson"],
    "nominal": {"alpha": 1.0, "beta": 1.0},
    "options": {"n_times": 5, "w2_particles": 32},
    "scaling": [
        {"name": "flow", "tau": "0.5*n**-0.5", "keep": "0.7"},
        {"name": "penalty", "tau": "0.5*n**-1.5", "keep": "1/n"},
        {"name": "jumps", "tau": "n**-0.5", "keep": "0.5*n**-0.5"},
    ],
})
print(len(config.scalings), "scalings x", len(config.widths), "widths x", config.repeats,
      "repeats")

# %% [markdown]
# `run_scan` writes one JSON file per cell into the directory and skips the cells already
# there, so a killed scan resumes. It runs the cells on worker processes (or on Dask with
# `dask=...`); the numbers do not depend on how many.

# %%
out_dir = tempfile.mkdtemp(prefix="scan_")
counts = run_scan(config, out_dir, workers=1 if SMALL else 2, progress=False)
print(counts)
config, results, missing = summarize(out_dir)

# %% [markdown]
# ## One row per cell and limit
#
# Each `ScalingResult` holds, per candidate limit, the distance of every cell (the sup over
# time of the predictor error) as an array of shape (repeats, widths). Unfold it into a tidy
# table: one row per scaling × limit × width × repeat.

# %%
rows = [dict(scaling=r.spec.name, theory=r.regime.phase, limit=limit, width=width,
             repeat=repeat, distance=values[repeat, w])
        for r in results for limit, values in r.distances.items()
        for w, width in enumerate(r.widths) for repeat in range(values.shape[0])]
cells = pd.DataFrame(rows)
cells.head(8)

# %% [markdown]
# pandas does the rest: the geometric mean over repeats, a width × limit table per scaling.

# %%
table = (cells.assign(log_distance=np.log(cells.distance))
         .groupby(["scaling", "limit", "width"]).log_distance.mean()
         .pipe(np.exp).unstack("width"))
table.round(4)

# %% [markdown]
# ## The decisions
#
# The rule names a limit only when its distance is clearly falling and every other limit is
# clearly at least twice as far at the largest width (95% intervals over the repeats);
# otherwise the answer is `undetermined` with the reason.

# %%
decisions = pd.DataFrame([dict(scaling=r.spec.name, tau=r.spec.tau, keep=r.spec.keep,
                               theory=r.regime.phase,
                               measured=None if r.decision is None else r.decision.phase,
                               agrees=r.agrees,
                               reason=None if r.decision is None else r.decision.reason)
                          for r in results])
decisions

# %%
fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 3.6), sharey=True)
for ax, (name, group) in zip(axes, cells.groupby("scaling", sort=False)):
    for limit, sub in group.groupby("limit"):
        mean = sub.groupby("width").distance.mean()
        ax.plot(mean.index, mean.values, "-o", label=limit)
    ax.set(title=f"{name} (theory: {group.theory.iloc[0]})", xscale="log", yscale="log",
           xlabel="width n")
    ax.set_xticks(config.widths, labels=[str(w) for w in config.widths])
    ax.tick_params(axis="x", which="minor", labelbottom=False)
axes[0].set_ylabel("sup_t predictor error")
axes[0].legend()
fig.tight_layout()

# %% [markdown]
# From the shell, the same scan from a TOML file, its decisions and figure:
#
# ```bash
# python -m phase_diagram scan my_scan.toml --out-dir scan_runs/mine --workers 2
# python -m phase_diagram plot scan_runs/mine -o my_phase_diagram.png --verbose
# ```
