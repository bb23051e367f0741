"""Every figure of :mod:`meanfield_dropout`: functions that take results and return a
:class:`matplotlib.figure.Figure` (object API, no ``pyplot`` state); the caller saves them with
:func:`save_figure`. Labels and colours of the variants and limits are defined once, in
:mod:`.style`. The functions are imported on first use: importing this package does not
import matplotlib.
"""
from ..runtime.lazy import lazy_attributes

__all__ = ["alignment_figure", "convergence_figure", "demo_figure", "images_variants_figures",
           "mnist_figures", "save_figure", "sme_alignment_figure", "sme_figures",
           "sme_loss_figure", "sme_order_figure", "teacher_student_figures", "weak_order_figure"]
__getattr__, __dir__ = lazy_attributes(
    __name__, {name: ".mnist" if name == "mnist_figures" else ".figures" for name in __all__})
