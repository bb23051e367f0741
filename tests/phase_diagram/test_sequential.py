"""Sequential scans: an undecided scaling gets more repeats where only its intervals are too
wide, smaller widths where dropout explodes at every width, more width otherwise; every stage
resumable and built again identically from the records."""
import json
from pathlib import Path

import numpy as np

from phase_diagram.scan import config_from_dict
from phase_diagram.scan.sequential import run_sequential, stage_dirs, summarize_sequential
from phase_diagram.scan.summary import DIVERGED, summarize

NOISY = "tests.phase_diagram.cells:noisy_cell"
DIVERGING = "tests.phase_diagram.cells:diverging_cell"


def _config(cell, widths, repeats, **kw):
    return config_from_dict(dict(seed=5, widths=widths, repeats=repeats, horizon=1.0,
                                 cell_function=cell, limits=["wgf", "jump-poisson"],
                                 nominal=dict(alpha=1.0),
                                 scaling=[dict(name="s", tau="0.5*n**-0.5", keep="0.7")], **kw),
                            allow_import=True)


def _run(config, out, **kw):
    return run_sequential(config, out, workers=1, progress=False, allow_import=True, **kw)


def test_repeats_double_where_only_the_intervals_block(tmp_path):
    config = _config(NOISY, [16, 64], 3)
    # three repeats: the slope's estimate is below -0.15 but its interval is not
    _run(config, tmp_path / "fixed", max_width=64)
    first = summarize(tmp_path / "fixed")[1][0].decision
    assert first.phase == "undetermined" and first.intervals_block
    assert first.fits["wgf"].slope < -0.15 < first.fits["wgf"].slope_high
    assert "wgf is not clearly falling" in first.reason
    # with max_repeats the same cells and three more per width decide it, at the same widths
    out = tmp_path / "seq"
    counts = _run(config, out, max_width=64, max_repeats=12)
    assert [p.name for p in stage_dirs(out)] == ["n64-r6"] and counts["computed"] == 12
    _, results, missing = summarize_sequential(out)
    decision = results[0].decision
    assert missing == 0 and decision.phase == "wgf" and decision.fits["wgf"].slope_high < -0.15
    assert results[0].distances["wgf"].shape == (6, 2)
    # the first three repeats are the cells of the run without max_repeats
    cells = {p.name for p in (tmp_path / "fixed" / "cells").glob("*.json")}
    assert cells < {p.name for p in (out / "cells").glob("*.json")}
    assert _run(config, out, max_width=64, max_repeats=12)["computed"] == 0


def test_repeats_are_not_added_where_the_estimates_do_not_decide(tmp_path):
    # two repeats over 16 and 32: the estimate of a ratio of 100 and a slope of -1/2 decides,
    # the intervals do not; without the point estimates deciding, no repeats (the scan's
    # slow cell: the first limit within a factor 2 of the others up to n ~ 100)
    config = _config("tests.phase_diagram.cells:slow_cell", [16, 32], 2)
    _run(config, tmp_path, max_width=32, max_repeats=8)
    decision = summarize(tmp_path)[1][0].decision
    assert decision.phase == "undetermined" and not decision.intervals_block
    assert stage_dirs(tmp_path) == []


def test_smaller_widths_where_dropout_explodes_at_every_width(tmp_path):
    # tau_n = 0.5 n^-1/2 < 0.07 (dropout explodes) from n = 64 on, quiet at n = 32: the first
    # stage (64, 128) explodes everywhere, so the scan goes down to 32, then up until the
    # window of four widths (64..512) explodes above the quiet 32: degenerate
    config = _config(DIVERGING, [64, 128], 2, options=dict(blow_up_below=0.07))
    out = tmp_path / "down"
    counts = _run(config, out, max_width=512, min_width=16)
    assert [p.name for p in stage_dirs(out)] == ["n128-m32", "n256-m32", "n512-m32"]
    assert counts["stages"] == [128, 128, 256, 512]
    decision = summarize_sequential(out)[1][0].decision
    assert decision.phase == "degenerate" and decision.width == 512
    assert decision.reason.endswith("at every width n = 64..512, and in none at n = 32")
    # without smaller widths it explodes at every width it runs: diverged, no decision
    _run(config, tmp_path / "up", max_width=512)
    assert summarize_sequential(tmp_path / "up")[1][0].decision.phase == DIVERGED


def test_a_step_too_large_at_every_width_stays_diverged(tmp_path):
    # dropout explodes at every width down to min_width: no quiet width, no decision
    config = _config(DIVERGING, [32, 64], 2, options=dict(blow_up_below=1.0))
    out = tmp_path / "all"
    _run(config, out, max_width=128, min_width=16)
    assert [p.name for p in stage_dirs(out)] == ["n64-m16", "n128-m16"]
    result = summarize_sequential(out)[1][0]
    assert result.decision.phase == DIVERGED and result.widths == (16, 32, 64, 128)
    records = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    assert len(records) == 8 and all(r["diverged"]["variant"] == "dropout" for r in records)
    assert np.isnan(result.distances["wgf"]).all()
