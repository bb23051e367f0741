"""Sequential scans: undetermined scalings get larger widths, up to a budget, until decided.

After the scan of the configuration, every scaling whose phase is ``undetermined``
(:func:`phase_diagram.finder.decision.decide_asymptotic`) gets the next width, twice the largest, and
is decided again on all its widths; this repeats until every scaling is decided or the next
width would exceed ``max_width``. Stage k lives in ``DIR/sequential/n<width>/`` with its own
manifest (the undetermined scalings and the widths so far) and shares the cell files of
``DIR/cells`` and the claims of ``DIR/claims`` (cells are keyed by their identity, so no cell
is computed twice and a killed or interrupted sequential scan resumes where it stopped).
"""
import dataclasses
import os
from pathlib import Path

from .runner import run_scan
from .summary import summarize

__all__ = ["run_sequential", "summarize_sequential", "stage_dirs"]


def stage_dirs(out_dir):
    """The stage directories of a sequential scan, by increasing largest width."""
    root = Path(out_dir) / "sequential"
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.name.startswith("n") and
                   p.name[1:].isdigit()), key=lambda p: int(p.name[1:]))


def _stage(out_dir, width):
    """The directory of the stage up to ``width``, its ``cells`` and ``claims`` linked to
    those of ``out_dir``."""
    path = Path(out_dir) / "sequential" / f"n{width}"
    path.mkdir(parents=True, exist_ok=True)
    for name in ("cells", "claims"):
        (Path(out_dir) / name).mkdir(parents=True, exist_ok=True)
        if not (path / name).exists():
            os.symlink(os.path.relpath(Path(out_dir) / name, path), path / name)
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


def run_sequential(config, out_dir, *, max_width, workers=None, dask=None, dask_timeout=None,
                   progress=True, allow_import=False, fits=None):
    """Run a scan, then give the undetermined scalings larger widths until decided.

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
        budget); an undetermined scaling that does not fit the next width stops there.

    Returns
    -------
    dict
        ``stages`` (the largest width of each stage) and ``computed`` (cells computed).
    """
    backend = dict(workers=workers, dask=dask, dask_timeout=dask_timeout, progress=progress,
                   allow_import=allow_import)
    counts = run_scan(config, out_dir, **backend)
    computed, stages = counts["computed"], [max(config.widths)]
    widths = list(config.widths)
    _, results, _ = summarize(out_dir)
    while True:
        # the scalings still undetermined after the previous stage (not after the latest
        # stage of each scaling: a rerun then rebuilds the same stages)
        pending = tuple(r.spec for r in results
                        if r.decision is not None and not r.decision.decided
                        and (fits is None or fits(r.spec, 2 * widths[-1])))
        if not pending or 2 * widths[-1] > max_width:
            break
        widths.append(2 * widths[-1])
        stage = dataclasses.replace(config, scalings=pending, widths=tuple(widths))
        path = _stage(out_dir, widths[-1])
        counts = run_scan(stage, path, **backend)
        computed += counts["computed"]
        stages.append(widths[-1])
        _, results, _ = summarize(path)
    return dict(stages=stages, computed=computed)
