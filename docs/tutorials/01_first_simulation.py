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
# # 1. A first simulation: coupled variants
#
# Train one two-layer network of width n under four update rules at once — plain GD,
# dropout, the random metric (RaM) and propagation noise with RaM (PN + RaM) — from **one
# seed**. The variants share the initial particles, the minibatches and the masks, so they
# can be compared path by path, not only on average. Then draw your own figures of the
# results with matplotlib.
#
# The data is the phase-diagram paper's teacher–student problem: d = 20 inputs, 500
# training and 500 validation points, targets from a 15-unit ReLU teacher.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from meanfield_dropout import coupled_rms, simulate, teacher_student

# The test suite runs every tutorial with this variable set, at small sizes.
SMALL = os.environ.get("MEANFIELD_DROPOUT_TUTORIAL_SMALL") == "1"
width, steps = (100, 40) if SMALL else (2000, 600)

# %% [markdown]
# `simulate` trains every variant in `variants` from the same seed. Neuron i moves by the
# master learning rate τ (`master_lr`) times its gradient; masks keep a neuron with
# probability q (`keep_prob`). `snapshot_steps` stores the particles after those steps.

# %%
data = teacher_student()
run = simulate(data.inputs, data.targets, width=width, keep_prob=0.7, master_lr=0.5,
               steps=steps, variants=("gd", "dropout", "ram", "pn_ram"), seed=0,
               val_inputs=data.val_inputs, val_targets=data.val_targets,
               snapshot_steps=[0, steps // 10, steps], loss_every=5, progress=False)
print("variants:", run.variants)
print("losses recorded at", len(run.loss_steps), "steps; snapshots at", run.snapshot_steps)
print("particles: width x (output weight a_i, input weights w_i) =",
      run.final["dropout"].shape)

# %% [markdown]
# ## Losses
# The train and validation losses are the unmasked losses ½ mean (f − y)², recorded every
# `loss_every` steps.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for name in run.variants:
    axes[0].plot(run.loss_steps, run.train_loss[name], label=name)
    axes[1].plot(run.loss_steps, run.val_loss[name], label=name)
for ax, title in zip(axes, ("train loss", "validation loss")):
    ax.set(title=title, xlabel="step k", yscale="log")
axes[0].set_ylabel("½ mean (f − y)²")
axes[0].legend()
fig.tight_layout()

# %% [markdown]
# ## Path by path
# Because the variants are coupled, the distance between two of them is meaningful neuron
# by neuron: `coupled_rms` is the root mean square distance between the i-th particles of
# two runs. At the first snapshot (step 0) every distance is zero: one initialisation.

# %%
distances = {name: [coupled_rms(run.snapshots["dropout"][s], run.snapshots[name][s])
                    for s in range(len(run.snapshot_steps))]
             for name in ("gd", "ram", "pn_ram")}
for name, values in distances.items():
    print(f"dropout to {name:7s}", "  ".join(f"step {k}: {v:.4f}"
                                               for k, v in zip(run.snapshot_steps, values)))

# %% [markdown]
# RaM is dropout's limit in this scaling (τ and q fixed as n grows: the Bernoulli-clock
# phase), so dropout stays closer to RaM than to GD. The cloud of neurons shows it: below, the
# first two input weights of each neuron after the last step.

# %%
fig, ax = plt.subplots(figsize=(5.5, 5))
for name, marker in (("gd", "x"), ("ram", "+"), ("dropout", ".")):
    cloud = run.final[name]
    ax.scatter(cloud[:, 1], cloud[:, 2], s=12, marker=marker, label=name, alpha=0.7)
ax.set(xlabel="input weight w_i1", ylabel="input weight w_i2",
       title=f"neurons after {steps} steps (n = {width})")
ax.legend()
fig.tight_layout()

# %% [markdown]
# Save the whole result in one `.npz` file and load it back:
#
# ```python
# run.save("run.npz")
# from meanfield_dropout import SimulationResult
# same = SimulationResult.load("run.npz")
# ```
