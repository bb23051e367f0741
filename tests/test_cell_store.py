"""The cell store and its run loop: resume after a kill, claims, invalid and foreign records,
one configuration per directory, the same numbers for any worker count, interrupts."""
import json
import threading
from concurrent.futures.process import BrokenProcessPool

import pytest

from meanfield_dropout.runtime.cells import CellStore, CellWarning, cell_key, cell_seed, run_cells
from meanfield_dropout.runtime.runner import Interrupted

from .cell_tasks import ROOT_SEED, ToyResult, noisy_cell, noisy_result, toy_cells, values_problem

CONFIG = dict(root_seed=ROOT_SEED, scale=2.0)


def _store(path, codec="json", config=CONFIG):
    check = values_problem if codec == "json" else None
    return CellStore(path, "toy run", config, codec=codec, check=check).open()


def _run(store, cells=None, workers=1, function=noisy_cell, **kw):
    return run_cells(toy_cells() if cells is None else cells, function, store, args=(2.0,),
                     workers=workers, progress=False, **kw)


def _counts(markers):
    return {p.stem: len(p.read_text().splitlines()) for p in markers.glob("*.count")}


def test_keys_and_seeds_depend_on_the_identity_only():
    identity = dict(b=[1, 2], a="x")
    assert cell_key(identity, 3) == cell_key(dict(a="x", b=[1, 2]), 3)
    assert cell_key(identity, 3) != cell_key(identity, 4)
    assert len(cell_key(identity, 3)) == 24
    assert cell_seed(3, identity) == cell_seed(3, dict(a="x", b=[1, 2]))
    assert cell_seed(3, identity) != cell_seed(4, identity) != cell_seed(3, dict(a="y", b=[1]))


def test_a_killed_run_resumes_with_nothing_lost_and_nothing_twice(tmp_path, monkeypatch):
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("CELL_TEST_MARKERS", str(markers))
    cells = toy_cells()
    monkeypatch.setenv("CELL_TEST_KILL", cells[3].key)
    store = _store(tmp_path / "run")
    with pytest.raises(BrokenProcessPool):
        _run(store)                        # one worker: cells 0-2 are finished, 3 kills it
    assert sorted(p.stem for p in (tmp_path / "run" / "cells").glob("*.json")) == \
        sorted(c.key for c in cells[:3])
    assert not list((tmp_path / "run" / "cells").glob(".*.tmp"))
    monkeypatch.delenv("CELL_TEST_KILL")
    counts, values = _run(store, workers=2)
    assert counts == dict(total=6, skipped=3, computed=3, by_other=0, invalid=0)
    assert _counts(markers) == {c.key: 1 for c in cells}
    reference = _run(_store(tmp_path / "reference"), workers=1)[1]
    assert values == reference
    assert _run(store, workers=2)[0]["computed"] == 0


@pytest.mark.parametrize("codec", ["json", "npz"])
def test_numbers_do_not_depend_on_the_worker_count_or_the_process(tmp_path, codec):
    function = noisy_cell if codec == "json" else noisy_result
    here = _run(_store(tmp_path / "here", codec), function=function, always_spawn=False)[1]
    one = _run(_store(tmp_path / "one", codec), function=function)[1]
    two = _run(_store(tmp_path / "two", codec), function=function, workers=2)[1]
    plain = _run(None, function=function, workers=2)[1]
    if codec == "npz":
        here, one, two, plain = ({k: v.values.tolist() for k, v in run.items()}
                                 for run in (here, one, two, plain))
    else:
        plain = {k: v["values"] for k, v in plain.items()}
        here, one, two = ({k: v["values"] for k, v in run.items()} for run in (here, one, two))
    assert here == one == two == plain and len(here) == 6


def test_foreign_truncated_and_incomplete_records_are_recomputed_with_a_warning(tmp_path):
    store = _store(tmp_path)
    cells = toy_cells()
    reference = _run(store)[1]
    store.path(cells[0].key).write_text(store.path(cells[1].key).read_text())  # another's
    store.path(cells[2].key).write_text('{"key": "trunc')
    incomplete = json.loads(store.path(cells[3].key).read_text())
    incomplete["values"] = incomplete["values"][:2]
    store.path(cells[3].key).write_text(json.dumps(incomplete))
    other_identity = json.loads(store.path(cells[4].key).read_text())
    other_identity["identity"]["size"] = 5
    store.path(cells[4].key).write_text(json.dumps(other_identity))
    with pytest.warns(CellWarning, match=r"4 cell record\(s\) .* are invalid and are "
                                         r"recomputed \(e\.g\. \w+\.json holds the record of "
                                         r"another cell"):
        counts, values = _run(store)
    assert counts == dict(total=6, skipped=2, computed=4, by_other=0, invalid=4)
    assert values == reference
    assert all(store.read(cell)[1] is None for cell in cells)


def test_an_npz_record_of_another_cell_or_a_truncated_one_is_recomputed(tmp_path):
    store = _store(tmp_path, "npz")
    cells = toy_cells()
    reference = _run(store, function=noisy_result)[1]
    store.path(cells[0].key).write_bytes(store.path(cells[1].key).read_bytes())
    store.path(cells[2].key).write_bytes(store.path(cells[2].key).read_bytes()[:100])
    with pytest.warns(CellWarning, match="2 cell record"):
        counts, values = _run(store, function=noisy_result)
    assert counts["computed"] == 2 and counts["invalid"] == 2
    assert all(isinstance(v, ToyResult) for v in values.values())
    assert {k: v.values.tolist() for k, v in values.items()} == \
        {k: v.values.tolist() for k, v in reference.items()}


def test_a_directory_of_another_configuration_or_a_file_is_refused(tmp_path):
    _store(tmp_path / "run")
    _store(tmp_path / "run")                        # the same configuration resumes
    with pytest.raises(ValueError, match=r"holds cells of another configuration \(see its "
                                         r"manifest.json\); give another directory to start "
                                         r"a new toy run, or delete this one"):
        _store(tmp_path / "run", config=dict(CONFIG, scale=3.0))
    with pytest.raises(ValueError, match=r"holds cells of another kind \('toy run'\) .*start "
                                         r"a new other kind"):
        CellStore(tmp_path / "run", "other kind", CONFIG).open()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a toy run directory"):
        _store(tmp_path / "file")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="holds no readable manifest"):
        _store(tmp_path / "bad")


def test_a_claimed_cell_is_left_to_its_claimant(tmp_path, monkeypatch):
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("CELL_TEST_MARKERS", str(markers))
    store = _store(tmp_path / "run")
    cells = toy_cells()
    claim = store.claim(cells[2].key)
    assert claim is not None and store.claim(cells[2].key) is None
    record = noisy_cell(cells[2], 2.0)

    def finish():                          # the claimant finishes the cell, then lets go
        store.write(cells[2], record)
        claim.release()

    timer = threading.Timer(1.0, finish)
    timer.start()
    counts, values = _run(store, always_spawn=False)
    timer.join()
    assert counts == dict(total=6, skipped=0, computed=5, by_other=1, invalid=0)
    assert _counts(markers) == {c.key: 1 for c in cells}      # cell 2 only by its claimant
    assert values[cells[2].key]["values"] == record["values"]
    # a claimant that lets go without a record leaves the cell to the waiting run
    claim = store.claim(cells[5].key)
    store.path(cells[5].key).unlink()
    threading.Timer(0.5, claim.release).start()
    counts, _ = _run(store, always_spawn=False)
    assert counts["computed"] == 1 and counts["by_other"] == 0


def test_ctrl_c_keeps_the_finished_cells_and_says_so(tmp_path, monkeypatch):
    cells = toy_cells()
    monkeypatch.setenv("CELL_TEST_INTERRUPT", cells[2].key)
    store = _store(tmp_path / "run")
    with pytest.raises(Interrupted, match=f"^interrupted; 2 of 6 cells kept in "
                                          f"{tmp_path / 'run'}, rerun to resume$"):
        _run(store, always_spawn=False)
    with pytest.raises(Interrupted, match="^interrupted$"):
        _run(None, always_spawn=False)
    monkeypatch.delenv("CELL_TEST_INTERRUPT")
    assert _run(store)[0]["skipped"] == 2


def test_a_writer_s_leftover_temporary_file_is_removed_with_the_cell(tmp_path):
    store = _store(tmp_path)
    cells = toy_cells(1)
    leftover = store.path(cells[0].key).parent / f".{store.path(cells[0].key).name}.x1.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("half")
    _run(store, cells)
    assert not leftover.exists() and store.read(cells[0])[1] is None


def test_an_interrupted_run_s_temporary_files_go_unless_their_cell_is_claimed(tmp_path):
    store = _store(tmp_path)
    cells = toy_cells(2)
    partials = [store.path(c.key).parent / f".{store.path(c.key).name}.x1.tmp" for c in cells]
    partials[0].parent.mkdir(parents=True)
    for partial in partials:
        partial.write_text("half")
    with store.claim(cells[1].key):             # a live writer of cell 1
        store.discard_partial()
    assert not partials[0].exists() and partials[1].exists()
