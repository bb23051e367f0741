"""The experiments that need both packages, and the registry of every experiment.

* ``phase_diagram`` — the theoretical phase diagram of Chizat, Marion & Yesbay (2025), Figure
  1, with the phases measured by the scan of ``examples/phase_scan.toml`` overlaid;
* ``convergence`` — the five-phase check: in each phase the distance from dropout to the
  predicted limit falls with the width and the distance to a wrong limit does not.

:data:`EXPERIMENTS` adds them to :data:`meanfield_dropout.experiments.EXPERIMENTS`; both run
through :func:`meanfield_dropout.experiments.reproduce`.
"""
import dataclasses
from pathlib import Path


from meanfield_dropout import experiments as mf_experiments
from meanfield_dropout.convergence import estimate_cost
from meanfield_dropout.runtime import results, tables
from meanfield_dropout.runtime.memory import announced
from meanfield_dropout.validation import check_int
from meanfield_dropout.experiments import Experiment, FigureSet
from meanfield_dropout.experiments.settings import Settings, int_tuple
from meanfield_dropout.runtime.runner import map_tasks

from . import plots
from .convergence import PHASE_STUDIES, phase_study, phase_study_arguments
from .scan import config_from_dict, run_scan, summarize
from .scan.runner import scan_seconds
from .scan.config import read_toml


@results.register
@dataclasses.dataclass(frozen=True)
class ConvergencePhasesSettings(Settings):
    """Widths, repeats and root seed of the five-phase check (scalings: ``PHASE_STUDIES``)."""

    widths: tuple = (100, 200, 400, 800, 1600)
    repeats: int = 5
    seed: int = 0

    QUICK = dict(widths=(100, 200, 400), repeats=2)

    def __post_init__(self):
        self._set(widths=int_tuple(self.widths, "widths"),
                  repeats=check_int(self.repeats, "repeats", low=1),
                  seed=check_int(self.seed, "seed", low=0))


@results.result_class
class ConvergencePhasesResult:
    """One :class:`~meanfield_dropout.convergence.ConvergenceStudy` per phase."""

    settings: ConvergencePhasesSettings
    studies: list


def _phase_study(phase, widths, repeats, seed):
    with announced():       # in a worker: the caller announced the five studies
        return phase_study(phase, widths, repeats=repeats, seed=seed, progress=False)


def convergence_seconds(settings):
    """Estimated seconds of one core of each phase study of :func:`run_convergence`: the
    seconds of its cells (:func:`meanfield_dropout.convergence.estimate_cost`, the model
    each study announces).

    Returns
    -------
    list of float
    """
    seconds = []
    for phase in PHASE_STUDIES:
        scaling, cells, _ = phase_study_arguments(phase)
        seconds.append(settings.repeats * sum(
            estimate_cost(n, scaling.tau(n), scaling.keep(n), cells)[1]
            for n in settings.widths))
    return seconds


def run_convergence(settings, *, progress=True, workers=None):
    """:func:`~phase_diagram.convergence.phase_study` of every phase, widths 100–1600 and 5
    repeats by default (predictor RMS error against each limit, and coupled RMS to RaM and
    GD in the Bernoulli phase), the phases side by side on ``workers`` processes, with the
    estimate of :func:`convergence_seconds` and a bar when ``progress``
    (:func:`~meanfield_dropout.runtime.runner.map_tasks`)."""
    tasks = [(phase, settings.widths, settings.repeats, settings.seed)
             for phase in PHASE_STUDIES]
    studies = map_tasks(_phase_study, tasks, workers, what="convergence_phases",
                        estimate=lambda: convergence_seconds(settings), progress=progress,
                        unit="phase")
    return ConvergencePhasesResult(settings, studies)


def convergence_summary(result):
    """The fitted slopes of every series of every phase, one line per phase."""
    return [f"{study.label}: " + ", ".join(f"{key} ({name}) {fits[name]['slope']:+.2f}"
                                           for key, fits in study.fits.items() for name in fits)
            for study in result.studies]


@dataclasses.dataclass(frozen=True)
class PhaseDiagramSettings(Settings):
    """The scan behind the phase diagram: the configuration file ``config`` with its
    ``widths`` and ``repeats`` unless given here, root ``seed``, run into ``scan_dir``."""

    widths: tuple | None = None
    repeats: int | None = None
    seed: int = 0
    config: str = "examples/phase_scan.toml"
    scan_dir: str = "scan_runs/phase"

    QUICK = dict(widths=(32, 64, 128), repeats=2, scan_dir="scan_runs/phase_quick")

    def __post_init__(self):
        self._set(widths=None if self.widths is None else int_tuple(self.widths, "widths"),
                  repeats=None if self.repeats is None else check_int(self.repeats, "repeats",
                                                                      low=1),
                  seed=check_int(self.seed, "seed", low=0), config=str(self.config),
                  scan_dir=str(self.scan_dir))


@dataclasses.dataclass(eq=False)
class PhaseDiagramResult:
    """The summary of the scan in ``scan_dir`` (:func:`phase_diagram.scan.summarize`)."""

    __repr__ = tables.compact_repr

    config: object
    scalings: list
    missing: int
    scan_dir: str


def _summarize(scan_dir):
    config, scalings, missing = summarize(scan_dir)
    return PhaseDiagramResult(config, scalings, missing, str(scan_dir))


def _scan_config(settings):
    """The scan configuration of ``settings``: the file's, with their seed, widths, repeats."""
    data = read_toml(settings.config)
    data["seed"] = settings.seed
    if settings.widths is not None:
        data["widths"] = list(settings.widths)
    if settings.repeats is not None:
        data["repeats"] = settings.repeats
    return config_from_dict(data)


def run_phase_diagram(settings, *, progress=True, workers=None):
    """Run (or resume) the scan of ``settings`` into its directory and summarise it.

    The full scan (17 scalings, widths 64–1024, 3 repeats) takes about a minute on 2 cores;
    finished cells are skipped.
    """
    run_scan(_scan_config(settings), settings.scan_dir, workers=workers, progress=progress)
    return _summarize(settings.scan_dir)


def phase_diagram_seconds(settings):
    """Estimated seconds of one core of each cell of the scan of :func:`run_phase_diagram`
    (:func:`phase_diagram.scan.runner.scan_seconds`, the model the scan announces; finished
    cells of a resumed scan are counted too)."""
    return scan_seconds(_scan_config(settings))


def phase_diagram_summary(result):
    """Agreement of the detected phases with the theory (and unfinished cells, if any)."""
    decided = [r for r in result.scalings if r.decision is not None]
    lines = [f"warning: {result.missing} cells of {result.scan_dir} are not finished"] \
        if result.missing else []
    agree = sum(r.agrees is True for r in decided)
    wrong = sum(r.agrees is False for r in decided)
    return lines + [f"phase diagram: {agree + wrong}/{len(decided)} scalings decided, {agree} "
                    f"agree with theory, {wrong} wrong ({result.scan_dir})"]


class ScanExperiment(Experiment):
    """An experiment whose cache is its scan directory (``settings.scan_dir``)."""

    def cache_path(self, settings, out_dir, quick, paper=False):
        """The scan directory."""
        return Path(settings.scan_dir)

    def load(self, path):
        """The summary of the scan in ``path`` (ValueError if there is none)."""
        if not (Path(path) / "manifest.json").exists():
            raise ValueError(f"replot needs a scan in {path}; run without --replot first")
        return _summarize(path)

    def save(self, result, path):
        """Nothing to write: the scan wrote its cells as it ran."""


#: Every experiment of both papers, by name, in the order of ``reproduce --all``.
EXPERIMENTS = {
    "teacher_student": mf_experiments.EXPERIMENTS["teacher_student"],
    "images_variants": mf_experiments.EXPERIMENTS["images_variants"],
    "phase_diagram": ScanExperiment(PhaseDiagramSettings, run_phase_diagram,
                                    FigureSet(plots.__name__, "phase_diagram_figures"),
                                    phase_diagram_summary, "phase_diagram", PhaseDiagramResult,
                                    cost=phase_diagram_seconds),
    "convergence": Experiment(ConvergencePhasesSettings, run_convergence,
                              FigureSet(plots.__name__, "convergence_figures"),
                              convergence_summary, "convergence_phases",
                              ConvergencePhasesResult, cost=convergence_seconds),
    "sme": mf_experiments.EXPERIMENTS["sme"],
    "mnist": mf_experiments.EXPERIMENTS["mnist"],
}
