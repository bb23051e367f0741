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
# # 3. Your own scaling on the phase diagram
#
# A scaling says how the master learning rate τ_n and the keep probability q_n change with
# the width n. The theory decides its large-width limit from three constants,
# α = lim τ_n/q_n, β = lim (1 − q_n)/(n q_n) and τ_∞ = lim τ_n, and places it on a simplex by
# the point lim (log n, −log τ_n, −log q_n)/S_n. This notebook classifies scalings of your
# choice — exactly, with SymPy — and draws them on the theory's diagram. No simulation runs.

# %%
import matplotlib.pyplot as plt

from phase_diagram import classify, parse_scaling
from phase_diagram.plots import draw_theory, to_cartesian

# %% [markdown]
# Expressions use numbers, `n`, `+ - * / **`, `log`, `sqrt` and `exp`. They are parsed with a
# whitelist, never evaluated as Python.

# %%
regime = classify(parse_scaling("0.5*n**-0.5", "0.7*n**-0.5"))
print(regime.summary())

# %% [markdown]
# The constants are exact where SymPy finds them: `regime.constants.exact` holds (α, β, τ_∞,
# q_∞) as SymPy numbers, `regime.simplex_exact` the point. The phase's limit dynamics and its
# constants, ready for `meanfield_dropout.limits.simulate_limit`:

# %%
print("exact (alpha, beta, tau_inf, q_inf):", regime.constants.exact)
print("simplex point:", regime.simplex_exact)
print("limit:", regime.limit_config())

# %% [markdown]
# Now several scalings at once, one per phase and two degenerate ones, drawn on the diagram.
# Change the list to your own.

# %%
scalings = {
    "A": ("0.5*n**-0.5", "0.7"),                    # learning rate vanishes, q fixed
    "B": ("0.5*n**-1.5", "1/n"),                    # q_n n -> 1: a penalty survives
    "C": ("0.5*n**-0.5", "0.7*n**-0.5"),            # tau_n/q_n -> a constant
    "D": ("1/n", "1/n"),                            # the critical point
    "E": ("0.5", "0.7"),                            # nothing scales
    "F": ("n**-0.25", "n**-0.5"),                   # tau_n/q_n grows
    "G": ("1/log(n)", "1 - 1/log(n)"),              # logarithmic rates
}
regimes = {name: classify(parse_scaling(tau, keep)) for name, (tau, keep) in scalings.items()}
for name, r in regimes.items():
    c = r.constants
    print(f"{name}: {r.phase:15s} alpha = {c.text('alpha'):10s} beta = {c.text('beta'):10s} "
          f"point = {None if r.simplex_limit is None else r.simplex_limit.round(3)}")

# %%
points = {}                                         # scalings that share a point, one label
for name, r in regimes.items():
    if r.simplex_limit is not None:
        points.setdefault(tuple(r.simplex_limit.round(6)), []).append(name)
fig, ax = plt.subplots(figsize=(8, 6.5))
draw_theory(ax)
for point, names in points.items():
    x, y = to_cartesian(point)
    ax.plot(x, y, "D", color="black", ms=7, zorder=6)
    ax.annotate(", ".join(names), (x, y), xytext=(6, 6), textcoords="offset points",
                fontsize=11, fontweight="bold", zorder=7)
ax.set_title("your scalings on the theory's phase diagram")
fig.tight_layout()

# %% [markdown]
# Scalings that share a point can still differ in phase: the simplex point sees only the
# exponents, the constants decide on the boundaries (the Poisson line, the penalized line, the
# critical point). From the shell:
#
# ```bash
# python -m phase_diagram classify --master-lr "0.5*n**-0.5" --keep-prob "0.7*n**-0.5"
# python -m phase_diagram theory -o phase_diagram_theory.png
# ```
