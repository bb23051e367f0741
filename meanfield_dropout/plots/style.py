"""Labels and colours of the variants and limits: one table for every figure of both packages.

A variant (``kernels.variants.VARIANTS``) or a limit (``limits.LIMITS``) has the same colour
and name in every figure: the teacher–student, image and MNIST figures here, and the phase
diagrams, maps and ``locate`` figures of :mod:`phase_diagram.plots`.
"""

#: Legend name of each variant.
LABELS = {"gd": "no dropout (GD)", "dropout": "dropout", "ram": "RaM", "pn": "PN",
          "pn_ram": "PN + RaM", "penalized": "penalized GD"}
#: One colour per variant.
COLORS = {"gd": "tab:blue", "dropout": "tab:orange", "ram": "tab:green", "pn": "tab:purple",
          "pn_ram": "tab:red", "penalized": "tab:brown"}
#: The MNIST authors' names of the variants (their ``mnist_exp.py``).
PAPER_NAMES = {"gd": "zero", "dropout": "dropout", "ram": "row", "pn": "forward",
               "pn_ram": "for-back"}
#: Legend name of each limit.
LIMIT_LABELS = {"wgf": "WGF (dropout vanishes)", "penalized-wgf": "penalized WGF",
                "jump-poisson": "continuous-time jump (Poisson)",
                "jump-bernoulli": "discrete-time jump (Bernoulli, τ, q > 0)",
                "critical": "critical"}
#: One colour per limit.
LIMIT_COLORS = {"wgf": "0.45", "penalized-wgf": "tab:green", "jump-poisson": "tab:blue",
                "jump-bernoulli": "tab:orange", "critical": "red"}


def variant_label(name, source_names=None):
    """Legend name of variant ``name``, with a source's own name for it in parentheses.

    Parameters
    ----------
    name : str
        A variant.
    source_names : dict, optional
        variant → the name a source (e.g. the MNIST authors' code) gives it; shown after the
        label where it differs from the variant and the label has no parenthesis already.
    """
    label = LABELS[name]
    other = (source_names or {}).get(name, name)
    return label if other == name or "(" in label else f"{label} ({other})"
