"""The papers' experiments, one module each, and :func:`reproduce`, which makes their figures.

Each experiment module has its settings (a frozen dataclass with ``full()`` and ``quick()``
presets), a ``run(settings, *, progress, workers)`` returning a result dataclass, a
``summary(result)`` of its numbers and a ``task_seconds(settings)`` cost model (the estimate
:func:`reproduce` prints before it runs); its figures are drawn by
:mod:`meanfield_dropout.plots`.

* :mod:`.teacher_student` — Chizat, Marion & Yesbay (2025), Figure 1 (teacher–student);
* :mod:`.images_variants` — their MNIST experiment, on scikit-learn's 8×8 digits 4 vs 7;
* :mod:`.mnist` — their MNIST experiment on real MNIST (4 vs 7 or 10 classes), with sharpness
  (one cell of it: :mod:`.mnist_cell`);
* :mod:`.sme` — Zhang, Li, Luo & Xu (2024): SME loss curves, weak order, alignment.

The phase-diagram and five-phase convergence experiments need :mod:`phase_diagram` and live in
:mod:`phase_diagram.experiments`.
"""
import dataclasses
import importlib
import time
from pathlib import Path
from typing import Callable, NamedTuple, Optional

from .. import plots
from ..runtime import results
from ..runtime.memory import announced
from ..runtime.runner import announce_tasks, spread_seconds
from . import images_variants, mnist, sme, teacher_student


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One experiment as :func:`reproduce` drives it.

    Attributes
    ----------
    settings : type
        Its :class:`~meanfield_dropout.experiments.settings.Settings` subclass.
    run : callable
        ``run(settings, *, progress, workers) -> result``.
    figures : FigureSet
        ``figures(result) -> {file stem: Figure}``.
    summary : callable
        ``summary(result) -> list of str``: the numbers to print.
    cache : str
        File stem of the cached result, beside the figures.
    result : type
        The class of the cached result.
    run_options : tuple of str
        Extra keyword arguments ``run`` accepts (e.g. ``cells_dir``, ``dask``).
    cost : callable, optional
        ``cost(settings) -> list of float``: the estimated seconds of one core of each task
        that ``run`` spreads over its workers (a cost model from the work, excluding
        compilation; :meth:`estimated_seconds`), or None where the model cannot tell (a scan
        whose cell function has no cost estimator).
    """

    settings: type
    run: Callable
    figures: "FigureSet"
    summary: Callable
    cache: str
    result: type
    run_options: tuple = ()
    cost: Optional[Callable] = None

    def estimated_seconds(self, settings, workers=None):
        """(seconds of one core, wall seconds, processes used) of ``run(settings)`` on
        ``workers`` processes by the experiment's cost model, or None without one.

        The tasks of ``cost(settings)`` go to the workers longest first, each to the worker
        that is free first (:func:`~meanfield_dropout.runtime.runner.spread_seconds`); the
        wall time is when the last one ends. The models are fixed
        functions of the sizes (operations at a fixed rate, e.g.
        :func:`~meanfield_dropout.engine_plan.simulation_cost`, or fixed seconds per kernel
        step, :mod:`meanfield_dropout.sme.cost`), so the estimate does not depend on the
        speed or load of the machine it runs on.
        """
        tasks = None if self.cost is None else self.cost(settings)
        return None if tasks is None else spread_seconds(tasks, workers)

    def cache_path(self, settings, out_dir, quick, paper=False):
        """Where the result of ``settings`` is cached (stem: ``settings.cache_stem()`` if the
        settings define it, else ``cache``)."""
        stem = settings.cache_stem() if hasattr(settings, "cache_stem") else self.cache
        return Path(out_dir) / f"{stem}{_suffix(quick, paper)}.npz"

    def load(self, path):
        """The cached result at ``path`` (ValueError if there is none)."""
        if not Path(path).exists():
            raise ValueError(f"replot needs the cached results {path}; run without --replot "
                             "first")
        return results.load(path, self.result)

    def save(self, result, path):
        """Cache ``result`` at ``path``."""
        results.save(result, path)


class Reproduction(NamedTuple):
    """What :func:`reproduce` did: ``figures`` and ``cache`` paths, ``summary`` lines and the
    wall time in ``seconds``."""

    figures: list
    cache: Path
    summary: list
    seconds: float


#: The first summary line of a quick run.
QUICK_NOTE = ("quick mode: small settings for a first look; these numbers (slopes, distances, "
              "accuracies) are not the paper's (e.g. the teacher-student GD slope is not flat "
              "here); run without --quick for them")


def _suffix(quick, paper):
    return "_quick" if quick else "_paper" if paper else ""


def announce(experiment, settings, workers=None, quick=False, paper=False):
    """Print the estimated time of ``experiment.run(settings)`` on stderr, whatever its length
    (:func:`~meanfield_dropout.runtime.memory.announce_cost`): the wall time on ``workers``
    processes and the seconds of one core, by :meth:`Experiment.estimated_seconds`.

    Returns
    -------
    tuple or None
        :meth:`Experiment.estimated_seconds`: (seconds of one core, wall seconds, processes),
        None for an experiment without a cost model.
    """
    tasks = None if experiment.cost is None else experiment.cost(settings)
    if tasks is None:
        return None
    stem = settings.cache_stem() if hasattr(settings, "cache_stem") else experiment.cache
    return announce_tasks(tasks, f"{stem}{_suffix(quick, paper)}", workers, threshold=0)


def reproduce(experiment, out_dir="figures", *, settings=None, quick=False, replot=False,
              progress=True, workers=None, paper=False, run_options=None):
    """Run an experiment (or load its cached result), cache the result and save its figures.

    Parameters
    ----------
    experiment : Experiment
        E.g. ``EXPERIMENTS["teacher_student"]``.
    out_dir : str or path
        Directory of the figures and the cache (default ``figures`` in the current directory).
    settings : Settings, optional
        Default: the experiment's ``quick()`` or ``full()`` settings.
    quick : bool
        Name the files ``NAME_quick.png`` (and use the quick settings by default), so that a
        quick run never overwrites the full figures; the summary starts with
        :data:`QUICK_NOTE` (quick numbers are not the paper's).
    replot : bool
        Redraw from the cached result without running.
    progress : bool
        Show ``tqdm`` bars. The estimate of the run (:func:`announce`) is printed either way
        (on a Dask scheduler's cluster: the seconds of one core).
    workers : int, optional
        Processes for the independent runs (default: one per available core); the numbers do
        not depend on it.
    paper : bool
        Use the experiment's ``paper()`` settings (if it has them) and name the files
        ``NAME_paper.png``.
    run_options : dict, optional
        Extra keyword arguments of the experiment's ``run`` (see ``Experiment.run_options``).

    Returns
    -------
    Reproduction
    """
    start = time.perf_counter()
    if settings is None:
        settings = experiment.settings.quick() if quick else \
            experiment.settings.paper() if paper else experiment.settings.full()
    cache = experiment.cache_path(settings, out_dir, quick, paper)
    if replot:
        result = experiment.load(cache)
    else:
        remote = (run_options or {}).get("dask") not in (None, "local")
        announce(experiment, settings, 1 if remote else workers, quick, paper)
        with announced():       # the runs inside do not announce their parts again
            result = experiment.run(settings, progress=progress, workers=workers,
                                    **(run_options or {}))
        experiment.save(result, cache)
    suffix = _suffix(quick, paper)
    paths = [plots.save_figure(fig, Path(out_dir) / f"{stem}{suffix}.png")[0]
             for stem, fig in experiment.figures(result).items()]
    summary = experiment.summary(result)
    if quick:
        summary = [QUICK_NOTE] + summary
    return Reproduction(paths, cache, summary, time.perf_counter() - start)


@dataclasses.dataclass(frozen=True)
class FigureSet:
    """The figure function ``name`` of the module ``module``, imported when called (the
    figures' modules import matplotlib, which a command that draws nothing does not need).

    Attributes
    ----------
    module : str
        E.g. ``"meanfield_dropout.plots"``.
    name : str
        ``name(result)``: a Figure, or ``{file stem: Figure}`` for an experiment's set.
    """

    module: str
    name: str

    def __call__(self, result):
        return getattr(importlib.import_module(self.module), self.name)(result)


#: The experiments of this package, by name, in the order of ``reproduce --all``.
EXPERIMENTS = {
    "teacher_student": Experiment(
        teacher_student.TeacherStudentSettings, teacher_student.run,
        FigureSet(plots.__name__, "teacher_student_figures"), teacher_student.summary,
        "teacher_student", teacher_student.TeacherStudentResult,
        cost=teacher_student.task_seconds),
    "images_variants": Experiment(
        images_variants.ImagesVariantsSettings, images_variants.run,
        FigureSet(plots.__name__, "images_variants_figures"), images_variants.summary,
        "images_variants", images_variants.ImagesVariantsResult,
        cost=images_variants.task_seconds),
    "sme": Experiment(sme.SmeSettings, sme.run, FigureSet(plots.__name__, "sme_figures"),
                      sme.summary, "sme", sme.SmeResult, cost=sme.task_seconds),
    "mnist": Experiment(mnist.MnistSettings, mnist.run, FigureSet(plots.__name__, "mnist_figures"),
                        mnist.summary, "mnist", mnist.MnistResult, ("cells_dir", "dask"),
                        cost=mnist.task_seconds),
}
