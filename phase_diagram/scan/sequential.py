"""Sequential scans: an undetermined scaling gets more width, more repeats or, where dropout
explodes at every width, smaller widths, up to a budget, until decided.

After the scan of the configuration, every scaling left undecided by the rule
(:func:`phase_diagram.finder.decision.decide_asymptotic`) takes one step, chosen from what
blocks it, and is decided again on all its cells:

* **smaller width** (with ``min_width``): the scaling diverged and dropout itself left its
  bounds at every width it ran; it gets half its smallest width, down to ``min_width``. The
  rule's exploding clause needs a width where dropout stayed within its bounds below the
  window where it explodes; a step that is merely too large explodes at least as much at
  smaller widths, so it stays ``diverged``.
* **more repeats** (with ``max_repeats``): the rule's point estimates would decide it
  (:attr:`~phase_diagram.scan.summary.Decision.intervals_block`), only the intervals are too
  wide; its repeats double, up to ``max_repeats``, at the same widths.
* **more width**: otherwise, the next width, twice the largest, up to ``max_width`` and the
  ``fits`` budget.

This repeats until every scaling is decided or has no step left. A stage is a set of scalings
with the same widths and repeats, in ``DIR/sequential/n<largest>[-m<smallest>][-r<repeats>]/``
(the suffixes where they differ from the configuration's) with its own manifest; every stage
shares the cell files of ``DIR/cells`` and the claims of ``DIR/claims``. Cells are keyed by
their identity (the repeat index included), so no cell is computed twice, the numbers do not
depend on the order or the worker count, and a killed or interrupted sequential scan resumes
where it stopped. A stage's name fixes the number of steps that lead to it, so the stages are
rebuilt identically from the records on a rerun.
"""
import dataclasses
import os
import re
from pathlib import Path

from .runner import run_scan
from .summary import DIVERGED, dropout_exploded, summarize

__all__ = ["run_sequential", "summarize_sequential", "stage_dirs"]

_STAGE = re.compile(r"n(\d+)(?:-m(\d+))?(?:-r(\d+))?")


def _order(path):
    """Sort key of a stage directory consistent with every scaling's sequence of steps: a
    step raises the largest width or the repeats, or lowers the smallest width."""
    largest, smallest, repeats = _STAGE.fullmatch(path.name).groups()
    return int(largest), int(repeats or 0), -int(smallest) if smallest else -float("inf")


def stage_dirs(out_dir):
    """The stage directories of a sequential scan, each after the stages it follows."""
    root = Path(out_dir) / "sequential"
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if _STAGE.fullmatch(p.name)), key=_order)


def _stage(out_dir, config, widths, repeats):
    """The directory of the stage of ``widths`` and ``repeats``, its ``cells`` and ``claims``
    linked to those of ``out_dir``."""
    name = f"n{widths[-1]}"
    if widths[0] != min(config.widths):
        name += f"-m{widths[0]}"
    if repeats != config.repeats:
        name += f"-r{repeats}"
    path = Path(out_dir) / "sequential" / name
    path.mkdir(parents=True, exist_ok=True)
    for kind in ("cells", "claims"):
        (Path(out_dir) / kind).mkdir(parents=True, exist_ok=True)
        if not (path / kind).exists():
            os.symlink(os.path.relpath(Path(out_dir) / kind, path), path / kind)
    return path


def summarize_sequential(out_dir, flat_slope=None):
    """Per-scaling results of a (sequential) scan: each scaling's first decided stage, else
    its latest stage.

    The scan grows the widths of the scalings the default rule leaves undetermined, so under
    that rule the first decided stage is the last one. ``flat_slope`` (the rule's not-falling
    option, :func:`~phase_diagram.finder.decision.decide_asymptotic`) only adds decisions, so
    a scan run with it would have stopped at a stage this one ran: its first decided stage.

    Returns
    -------
    config : ScanConfig
        The configuration of the first stage.
    results : list of ScalingResult
        In the configuration's order; a scaling decided at a later stage carries that stage's
        widths, distances and decision.
    missing : int
        Unfinished cells over all stages.
    """
    config, results, missing = summarize(out_dir, flat_slope)
    chosen = {r.spec: r for r in results}
    for path in stage_dirs(out_dir):
        _, stage_results, stage_missing = summarize(path, flat_slope)
        missing += stage_missing
        chosen.update({r.spec: r for r in stage_results
                       if not (chosen[r.spec].decision and chosen[r.spec].decision.decided)})
    return config, [chosen[s] for s in config.scalings], missing


def _exploded_everywhere(result):
    """Whether dropout itself left its bounds in some repeat at every width of ``result``."""
    widths = {d["width"] for d in result.diverged if dropout_exploded(d)}
    return set(result.widths) <= widths


def _next_step(result, widths, repeats, *, max_width, fits, max_repeats, min_width):
    """(widths, repeats) of the next stage of an undecided scaling (module docstring), or
    None when it is decided or has no step left."""
    decision = result.decision
    if decision is None or decision.decided:
        return None
    if (min_width is not None and decision.phase == DIVERGED and widths[0] // 2 >= min_width
            and _exploded_everywhere(result)):
        return (widths[0] // 2,) + widths, repeats
    if max_repeats is not None and decision.intervals_block and repeats < max_repeats:
        return widths, min(2 * repeats, max_repeats)
    after = 2 * widths[-1]
    if after <= max_width and (fits is None or fits(result.spec, after)):
        return widths + (after,), repeats
    return None


def run_sequential(config, out_dir, *, max_width, workers=None, dask=None, dask_timeout=None,
                   progress=True, allow_import=False, fits=None, max_repeats=None,
                   min_width=None):
    """Run a scan, then give each undecided scaling more width, more repeats or smaller
    widths (module docstring) until it is decided or has no step left.

    Parameters
    ----------
    config : ScanConfig
    out_dir : str or Path
    max_width : int
        No width above it is run.
    workers, dask, dask_timeout, progress, allow_import
        As in :func:`~phase_diagram.scan.runner.run_scan`.
    fits : callable, optional
        ``fits(spec, width)``: whether the scaling ``spec`` may run at ``width`` (e.g. a step
        budget); an undetermined scaling that does not fit the next width stops growing there.
    max_repeats : int, optional
        Most repeats per width: a scaling whose intervals alone block the decision doubles its
        repeats up to it. None (default): the repeats stay ``config.repeats``.
    min_width : int, optional
        Smallest width: a scaling whose dropout explodes at every width it ran halves its
        smallest width down to it. None (default): no smaller widths.

    Returns
    -------
    dict
        ``stages`` (the largest width of the first stage, then of every later stage, in the
        order run) and ``computed`` (cells computed).
    """
    backend = dict(workers=workers, dask=dask, dask_timeout=dask_timeout, progress=progress,
                   allow_import=allow_import)
    counts = run_scan(config, out_dir, **backend)
    computed, stages = counts["computed"], [max(config.widths)]
    _, results, _ = summarize(out_dir)
    current = [(r, tuple(config.widths), config.repeats) for r in results]
    while True:
        groups = {}
        for result, widths, repeats in current:
            step = _next_step(result, widths, repeats, max_width=max_width, fits=fits,
                              max_repeats=max_repeats, min_width=min_width)
            if step is not None:
                groups.setdefault(step, []).append(result.spec)
        if not groups:
            break
        current = []
        for (widths, repeats), specs in sorted(groups.items()):
            stage = dataclasses.replace(config, scalings=tuple(specs), widths=widths,
                                        repeats=repeats)
            path = _stage(out_dir, config, widths, repeats)
            computed += run_scan(stage, path, **backend)["computed"]
            stages.append(widths[-1])
            _, stage_results, _ = summarize(path)
            current += [(r, widths, repeats) for r in stage_results]
    return dict(stages=stages, computed=computed)
