"""Every figure of :mod:`meanfield_dropout`: functions that take results and return a
:class:`matplotlib.figure.Figure` (object API, no ``pyplot`` state); the caller saves them with
:func:`save_figure`. Labels and colours of the variants and limits are defined once, in
:mod:`.style`.
"""
from .figures import (alignment_figure, convergence_figure, demo_figure, images_variants_figures,
                      save_figure, sme_alignment_figure, sme_figures, sme_loss_figure,
                      sme_order_figure, teacher_student_figures, weak_order_figure)
from .mnist import mnist_figures

__all__ = ["alignment_figure", "convergence_figure", "demo_figure", "images_variants_figures",
           "mnist_figures", "save_figure", "sme_alignment_figure", "sme_figures",
           "sme_loss_figure", "sme_order_figure", "teacher_student_figures", "weak_order_figure"]
