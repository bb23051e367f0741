"""The results codec: round trips, the one .npz layout, and one-line errors for bad files."""
import dataclasses
import json
import zipfile

import numpy as np
import pytest

from meanfield_dropout.runtime import results
from meanfield_dropout.limits import LimitResult


@results.register
@dataclasses.dataclass(eq=False)
class Part:
    name: str
    values: np.ndarray


@results.register
@dataclasses.dataclass(eq=False)
class Whole:
    settings: dict
    curves: dict
    parts: list
    shape: tuple
    missing: object = None


def whole():
    return Whole(settings=dict(seed=3, widths=[1, 2], rate=0.5, label="τ = 1"),
                 curves={"dropout": np.arange(4.0), "coupled_rms/ram": {"x": np.eye(2)}},
                 parts=[Part("a", np.array([1, 2], dtype=np.int64)),
                        Part("b", np.array(["u", "v"]))],
                 shape=(2, np.int64(3)))


def test_round_trip_keeps_values_types_and_dtypes(tmp_path):
    path = results.save(whole(), tmp_path / "w")
    assert path.name == "w.npz"
    back = results.load(path, Whole)
    assert back.settings == whole().settings and back.missing is None
    assert back.shape == (2, 3) and isinstance(back.shape[1], int)
    np.testing.assert_array_equal(back.curves["dropout"], np.arange(4.0))
    np.testing.assert_array_equal(back.curves["coupled_rms/ram"]["x"], np.eye(2))
    assert [p.name for p in back.parts] == ["a", "b"]
    assert back.parts[0].values.dtype == np.int64
    np.testing.assert_array_equal(back.parts[1].values, ["u", "v"])


def test_layout_is_named_arrays_plus_one_json_entry(tmp_path):
    path = results.save(whole(), tmp_path / "w.npz")
    with zipfile.ZipFile(path) as archive:
        names = sorted(name.removesuffix(".npy") for name in archive.namelist())
    assert names == ["__result__", "curves/coupled_rms/ram/x", "curves/dropout",
                     "parts/0/values", "parts/1/values"]
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["__result__"]))
    assert meta["format"] == 1 and meta["value"]["__type__"] == "Whole"
    assert meta["value"]["fields"]["settings"]["label"] == "τ = 1"


def test_limit_result_round_trips(tmp_path):
    result = LimitResult("wgf", np.array([0.0, 1.0]), np.ones((2, 3, 4)), np.zeros((2, 5)),
                         None, dict(limit="wgf", dt=0.02))
    back = LimitResult.load(result.save(tmp_path / "limit.npz"))
    assert back.limit == "wgf" and back.jumps is None and back.settings == result.settings
    np.testing.assert_array_equal(back.snapshots, result.snapshots)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


@pytest.mark.parametrize("damage, message", [
    (lambda path: path.unlink(), "no such result file"),
    (_truncate, "not an .npz \\(zip\\) archive, or truncated"),
    (lambda path: path.write_text("not a zip"), "not an .npz \\(zip\\) archive"),
    (lambda path: path.write_bytes(np.random.default_rng(0).bytes(3000)), "not an .npz"),
    (lambda path: path.write_bytes(b"\x93NUMPY" + bytes(100)), "not an .npz"),
    (lambda path: np.savez(path, x=np.ones(2)), "not a result file"),
])
def test_bad_files_give_one_line_naming_the_file(tmp_path, damage, message):
    path = results.save(whole(), tmp_path / "w.npz")
    damage(path)
    with pytest.raises(ValueError, match=message) as info:
        results.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_entries_and_wrong_class_are_named(tmp_path):
    path = results.save(whole(), tmp_path / "w.npz")
    with np.load(path) as data:
        kept = {key: data[key] for key in data.files if key != "curves/dropout"}
    np.savez(path, **kept)
    with pytest.raises(ValueError, match=r"missing the array entry 'curves/dropout'"):
        results.load(path)
    meta = json.loads(str(kept["__result__"]))
    del meta["value"]["fields"]["parts"]
    np.savez(path, **dict(kept, __result__=np.array(json.dumps(meta))))
    with pytest.raises(ValueError, match=r"missing the field\(s\) \['parts'\] of Whole"):
        results.load(path)
    other = results.save(Part("a", np.ones(1)), tmp_path / "part.npz")
    with pytest.raises(ValueError, match="holds a Part, expected Whole"):
        results.load(other, Whole)


def test_only_registered_dataclasses_and_plain_values_are_stored(tmp_path):
    @dataclasses.dataclass
    class Unregistered:
        x: int

    with pytest.raises(TypeError, match="not registered"):
        results.save(Unregistered(1), tmp_path / "u.npz")
    with pytest.raises(TypeError, match="object arrays"):
        results.save(Part("a", np.array([None, 1])), tmp_path / "o.npz")
    with pytest.raises(TypeError, match="cannot store a set"):
        results.save(Part("a", {1}), tmp_path / "s.npz")
    assert not list(tmp_path.glob("*"))


def test_corrupt_member_and_invalid_values_are_named(tmp_path):
    path = results.save(Part("a", np.random.default_rng(0).random(2000)), tmp_path / "p.npz")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)            # the zip directory survives, the data not
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt or truncated") as info:
        results.load(path)
    assert str(path) in str(info.value)
    # a result whose settings lack what its class needs (SimulationResult needs "variants")
    from meanfield_dropout import SimulationResult
    good = SimulationResult(dict(variants=["gd"]), np.zeros(1), {}, {}, np.zeros(0),
                            np.zeros(0), {}, {})
    path = results.save(good, tmp_path / "sim.npz")
    with np.load(path) as archive:
        kept = {key: archive[key] for key in archive.files}
    meta = json.loads(str(kept["__result__"]))
    meta["value"]["fields"]["settings"] = {}
    np.savez(path, **dict(kept, __result__=np.array(json.dumps(meta))))
    with pytest.raises(ValueError, match="holds an invalid SimulationResult") as info:
        SimulationResult.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    meta["value"] = {"__type__": ["x"], "fields": []}
    np.savez(path, **dict(kept, __result__=np.array(json.dumps(meta))))
    with pytest.raises(ValueError, match="unknown result type"):
        results.load(path)
    np.savez(path, **dict(kept, __result__=np.array("{not json")))
    with pytest.raises(ValueError, match="malformed __result__ entry"):
        results.load(path)


def test_files_get_the_permissions_of_a_new_file_and_a_failed_write_keeps_the_old(tmp_path):
    """Written through a temporary file, but readable as any new file (0o666 less the
    umask), and a write that fails leaves the previous file and no temporary behind."""
    umask = results._UMASK
    path = results.save(whole(), tmp_path / "sample")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    before = path.read_bytes()
    with pytest.raises(RuntimeError), results.atomic_file(path) as handle:
        handle.write(b"partial")
        raise RuntimeError("stopped")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample.npz"]
