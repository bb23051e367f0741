"""``locate``, ``map`` and ``scan --sequential`` on the command line; the jobqueue config."""
from pathlib import Path

import numpy as np
import pytest

from phase_diagram.cli.main import main
from phase_diagram.cluster import JobqueueConfig, load_jobqueue_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("argv, message", [
    (["locate", "--width", "8", "--master-lr", "0.1", "--keep-prob", "0.5"], "--width"),
    (["locate", "--width", "64", "--master-lr", "0", "--keep-prob", "0.5"], "--master-lr"),
    (["locate", "--width", "64", "--master-lr", "2", "--keep-prob", "0.5"], "--master-lr"),
    (["locate", "--width", "64", "--master-lr", "0.1", "--keep-prob", "1.5"], "--keep-prob"),
    (["locate", "--width", "64", "--master-lr", "0.1", "--keep-prob", "nan"], "--keep-prob"),
    (["locate", "--width", "64", "--master-lr", "0.1", "--keep-prob", "0.5", "--data",
      "digits"], "teacher-student, toy, mnist47 or an .npz"),
    (["locate", "--width", "64", "--master-lr", "0.1", "--keep-prob", "0.5", "--steps", "5",
      "--horizon", "1"], "not allowed with"),
    (["locate", "--width", "64", "--master-lr", "0.1", "--keep-prob", "0.5", "--repeats",
      "1"], "--repeats"),
    (["map", "--grid", "1"], "--grid"),
    (["map", "--grid", "41"], "--grid"),
    (["map", "--widths", "8,64"], "width"),
    (["map", "--widths", "64,x"], "comma-separated"),
    (["map", "--quick", "--widths", "64,128"], "--quick"),
    (["map", "--dask", "local", "--jobqueue", "x.toml", "--grid", "2", "--widths", "16,32",
      "--out-dir", "{tmp}/m"], "not both"),
    (["map", "--replot", "--out-dir", "{tmp}/nothing"], "no phase map"),
    (["scan", str(ROOT / "examples" / "phase_scan_small.toml"), "--out-dir", "{tmp}/s",
      "--sequential", "--allow-import"], "--max-width"),
    (["scan", str(ROOT / "examples" / "phase_scan_small.toml"), "--out-dir", "{tmp}/s",
      "--max-width", "128", "--allow-import"], "--sequential"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_locate_command_prints_the_report_and_writes_the_figure(tmp_path, capsys):
    data = tmp_path / "data.npz"
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((30, 3))
    np.savez(data, inputs=inputs, targets=np.tanh(inputs @ np.ones(3)))
    figure = tmp_path / "locate.png"
    assert main(["locate", "--width", "32", "--master-lr", "0.2", "--keep-prob", "0.5",
                 "--data", str(data), "--steps", "5", "--repeats", "2", "--workers", "1",
                 "--out", str(figure)]) == 0
    out = capsys.readouterr().out
    assert "alpha_n = tau/q = 0.4" in out and "nearest limit" in out
    assert figure.stat().st_size > 10_000


def test_sequential_scan_adds_widths_until_decided(tmp_path, capsys):
    from phase_diagram.scan import config_from_dict
    from phase_diagram.scan.sequential import run_sequential, stage_dirs, summarize_sequential
    from phase_diagram.scan.summary import summarize
    config = config_from_dict(dict(
        seed=3, widths=[16, 32], repeats=3, cell_function="tests.phase_diagram.cells:slow_cell",
        limits=["wgf", "jump-poisson"], nominal=dict(alpha=1.0),
        scaling=[dict(name="WGF", tau="0.5*n**-0.5", keep="0.7")]), allow_import=True)
    out = tmp_path / "seq"
    counts = run_sequential(config, out, max_width=1024, workers=1, progress=False,
                            allow_import=True)
    _, first, _ = summarize(out)
    assert first[0].decision.phase == "undetermined"
    _, results, missing = summarize_sequential(out)
    assert missing == 0 and results[0].decision.phase == "wgf"
    width = results[0].decision.width
    assert 64 < width <= 1024 and counts["stages"][-1] == width
    assert [int(p.name[1:]) for p in stage_dirs(out)] == counts["stages"][1:]
    # a rerun computes nothing; the plot command reads the stages
    assert run_sequential(config, out, max_width=1024, workers=1, progress=False,
                          allow_import=True)["computed"] == 0
    assert main(["plot", str(out), "-o", str(tmp_path / "pd.png")]) == 0
    assert ("decided 1/1 scalings: 1 agree with theory, 0 wrong, 0 undetermined or "
            "diverged\n") in capsys.readouterr().out
    # the not-falling option re-reads the records and says so
    assert main(["plot", str(out), "-o", str(tmp_path / "pd.png"), "--flat-slope", "0.15"]) == 0
    assert ("decided 1/1 scalings: 1 agree with theory, 0 wrong, 0 undetermined or diverged; "
            "degenerate also when every limit is clearly not falling (slope interval above "
            "-0.15)") in capsys.readouterr().out


def test_jobqueue_config_validates_and_builds_a_job_script(tmp_path):
    config = load_jobqueue_config(ROOT / "examples" / "jobqueue_slurm.toml")
    assert config.workers == 100 and config.system == "slurm"
    kwargs = config.cluster_kwargs()
    assert kwargs["cores"] == kwargs["processes"] == 10 and kwargs["queue"] == "compute"
    assert "export NUMBA_NUM_THREADS=1" in kwargs["job_script_prologue"]
    for bad, match in [(dict(system="yarn"), "system"), (dict(cores=4, processes=2), "equal"),
                       (dict(walltime="2h"), "walltime"), (dict(jobs=0), "jobs"),
                       (dict(job_script_prologue="source x"), "list of strings")]:
        with pytest.raises(ValueError, match=match):
            JobqueueConfig(**bad)
    path = tmp_path / "bad.toml"
    path.write_text('system = "slurm"\nnodes = 3\n')
    with pytest.raises(ValueError, match="unknown key"):
        load_jobqueue_config(path)
    jobqueue = pytest.importorskip("dask_jobqueue")
    cluster = getattr(jobqueue, "SLURMCluster")(**kwargs)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -p compute" in script and "#SBATCH -A my-project" in script
    assert "export NUMBA_NUM_THREADS=1" in script and "--nthreads 1" in script
