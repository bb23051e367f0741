"""Cells per second of a phase map on 1 and 2 local workers (and on Dask), same cells.

    python benchmarks/bench_map_workers.py [--grid 4] [--widths 64,256] [--dask]

Runs the cells of one map configuration into fresh directories with 1 worker, with 2 workers
and (``--dask``) on a 2-worker ``dask.distributed`` LocalCluster, checks that every run wrote
the same numbers, and prints cells per second, the speed-up, the mean compute time per cell,
and the estimated wall time of a 10 000-cell map on 100 workers from that per-cell cost.
"""
import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from phase_diagram.finder.phase_map import MapConfig, build_map_cells, run_map
from timing import machine_header


def numbers(out):
    return {p.name: json.loads(p.read_text())["distances"]
            for p in sorted((Path(out) / "cells").glob("*.json"))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=4)
    parser.add_argument("--widths", default="64,256")
    parser.add_argument("--budget", type=float, default=2.0)
    parser.add_argument("--dask", action="store_true")
    args = parser.parse_args()
    config = MapConfig(grid=args.grid, widths=tuple(int(w) for w in args.widths.split(",")),
                       repeats=2, budget=args.budget)
    cells = len(build_map_cells(config)[0])
    print(machine_header())
    runs = [("pool", 1, None), ("pool", 2, None)] + ([("dask", 2, "local")] if args.dask
                                                     else [])
    rates, reference, per_cell = {}, None, None
    with tempfile.TemporaryDirectory() as tmp:
        for name, workers, dask in runs:
            out = Path(tmp) / f"{name}{workers}"
            start = time.perf_counter()
            run_map(config, out, workers=workers, dask=dask, progress=False)
            wall = time.perf_counter() - start
            rates[(name, workers)] = cells / wall
            got = numbers(out)
            reference = reference or got
            same = got == reference
            compute = sum(json.loads(p.read_text())["elapsed"]
                          for p in (out / "cells").glob("*.json"))
            per_cell = compute / cells if per_cell is None else per_cell
            print(f"{name} {workers} worker(s): {cells} cells in {wall:.1f} s = "
                  f"{cells / wall:.2f} cells/s; cell compute {compute:.1f} s "
                  f"({compute / cells:.2f} s per cell, busy {compute / wall / workers:.0%}); "
                  f"numbers identical to the first run: {same}", flush=True)
    print(f"speed-up 2 vs 1 workers: {rates[('pool', 2)] / rates[('pool', 1)]:.2f}x; "
          f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"mean compute per cell (1 worker): {per_cell:.2f} s; a 10 000-cell map of this "
          f"mix on 100 workers: about {10_000 * per_cell / 100 / 60:.0f} min")


if __name__ == "__main__":
    main()
