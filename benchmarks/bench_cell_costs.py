"""The costs of a convergence cell on the ``toy`` problem, measured: the constants of
``meanfield_dropout.cost_model`` other than the per-entry costs (``row_entry``,
``heun_entry``, ``ring_entry``: measured on MNIST by ``benchmarks/bench_plugin_costs.py``).

Each unit is the CPU time (``time.process_time``, one Numba thread, best of ``--repeats``
after a warm-up call) of the public functions on the ``toy`` problem (m = 40, d = 4), minus
what the model already counts:

* ``engine_call``, ``engine_step``, ``row_fixed``, ``row_point`` — ``simulate`` at widths 8
  and 512 (q = 1/2), on 10 and 40 data points, with 1 and 1001 steps: a step's cost by least
  squares on the kept neurons and their data points (``row_entry``, the cost per entry of the
  data, is ``bench_plugin_costs.py``'s, measured on MNIST), the call's at width 8 on 40 points;
* ``limit_call``, ``heun_step``, ``heun_fixed``, ``heun_point`` — ``simulate_limit("wgf")``
  on 8 and 512 particles, 10 and 40 data points, over 1 and 201 Heun steps, likewise
  (``heun_step``, a step's cost besides its particles, measures below 1 µs: ``REFERENCE``
  has 0);
* ``ring_fixed``, ``ring_point`` — ``simulate_limit("jump-poisson")`` on 512 particles, 10
  and 40 data points, with 10³ and 1.01·10⁵ rings (slope per ring); ``partner`` — the
  ``critical`` limit's extra time with β = 0.02 (50 partners per ring), per partner and data
  point;
* ``PREDICT`` — a cloud's predictor on the data, 64 and 4096 particles (slope, per particle
  and data point);
* ``W2_SQUARE``, ``W2_CUBE`` — the exact W2 of k = 64, 128, 256, 384, 500 points (least
  squares on k² and k³);
* ``DISTANCE`` — one distance of 8-particle clouds (two predictors, their RMS difference, W2
  of 8 points), less its predictors and W2;
* ``CELL`` — ``measure_distances`` at width 8 with one Poisson limit over one step, less
  everything else the model counts.

It then prints the model's estimate against the measured CPU time of a few cells at the
scans' sizes, and, with ``--records DIR`` (scan directories), of every finished cell recorded
there (the records' ``cpu``, measured inside the cells).

Run: ``python benchmarks/bench_cell_costs.py [--repeats 5] [--records scan_runs/phase ...]``.
The constants are then written into ``meanfield_dropout/cost_model.py`` by hand: they are the
reference machine's, so an estimate never depends on the machine it is made on.
"""
import argparse
import json
import time
from pathlib import Path

import numba
import numpy as np

from meanfield_dropout import cost_model as cm
from meanfield_dropout import simulate
from meanfield_dropout.convergence import CellSettings, estimate_cost, measure_distances
from meanfield_dropout.data import toy
from meanfield_dropout.limits import LimitConstants, _cloud_predictor, simulate_limit
from meanfield_dropout.metrics import predictor_distance, wasserstein2
from meanfield_dropout.network import network_data
from timing import best_seconds, machine_header


def cpu_seconds(run, repeats):
    """Best CPU time of ``run()`` over ``repeats`` calls, after one warm-up call."""
    return best_seconds(run, repeats, clock=time.process_time)


def use(constants):
    """Make the model use ``constants`` ({name: seconds}: fields of ``REFERENCE`` in lower
    case, the module's constants in upper case)."""
    units = {k: v for k, v in constants.items() if k in cm.UnitCosts._fields}
    cm.REFERENCE = cm.REFERENCE._replace(**units)
    for name, value in constants.items():
        if name.isupper():
            setattr(cm, name, value)


def model_constants():
    """{name: seconds} of the model as it is (the form :func:`use` takes)."""
    return dict(cm.REFERENCE._asdict(), **{k: v for k, v in vars(cm).items()
                                            if k.isupper() and isinstance(v, float)})


def _least_squares(rows, values):
    return np.linalg.lstsq(np.array(rows, dtype=float), np.array(values), rcond=None)[0]


def fixed_costs(repeats):
    """{constant: measured value} (module docstring)."""
    data = toy()
    m, d = data.inputs.shape
    train = network_data(data.inputs, data.targets, activation="tanh")
    entry = d + 1
    out = {}

    def engine(width, points, steps):
        return cpu_seconds(lambda: simulate(
            data.inputs[:points], data.targets[:points], master_lr=0.01, steps=steps,
            width=width, keep_prob=0.5, variants=("dropout",), activation="tanh",
            loss_every=steps, progress=False), repeats)

    def flow(particles, points, steps):
        few = network_data(data.inputs[:points], data.targets[:points], activation="tanh")
        return cpu_seconds(lambda: simulate_limit("wgf", few, times=[0.0, steps * 0.01],
                                                  limit_particles=particles, dt=0.01),
                           repeats)

    # a step: engine_step + rows (row_fixed + points (row_point + row_entry p)), row_entry
    # known
    design, per_step, calls = [], [], []
    for width in (8, 512):
        for points in (10, m):
            one, many = engine(width, points, 1), engine(width, points, 1001)
            rows = 0.5 * width + 1
            design.append([1.0, rows, rows * points])
            per_step.append((many - one) / 1000 - rows * points * cm.REFERENCE.row_entry * entry)
            calls.append(one - (many - one) / 1000)
    out["engine_step"], out["row_fixed"], out["row_point"] = _least_squares(design, per_step)
    out["engine_call"] = calls[1]                   # width 8 on the whole data
    design, per_step, calls = [], [], []
    for particles in (8, 512):
        for points in (10, m):
            one, many = flow(particles, points, 1), flow(particles, points, 201)
            design.append([1.0, particles, particles * points])
            per_step.append((many - one) / 200
                            - particles * points * cm.REFERENCE.heun_entry * entry)
            calls.append(one - (many - one) / 200)
    # heun_step, a step's cost besides its particles: below 1 µs here, REFERENCE has 0
    out["heun_step"], out["heun_fixed"], out["heun_point"] = _least_squares(design, per_step)
    out["limit_call"] = calls[1]

    # a ring: ring_fixed + points (ring_point + ring_entry p); a critical one also draws
    # 1/β partners, partner each per data point
    def rings(limit, points, count, beta=None):
        few = network_data(data.inputs[:points], data.targets[:points], activation="tanh")
        alpha = 512 * 0.1 / count
        return cpu_seconds(lambda: simulate_limit(limit, few, LimitConstants(alpha=alpha,
                                                                             beta=beta),
                                                  times=[0.0, 0.1], limit_particles=512),
                           repeats)
    per_ring = {}
    for points in (10, m):
        one, many = rings("jump-poisson", points, 1000), rings("jump-poisson", points, 101000)
        per_ring[points] = (many - one) / 100000 - points * cm.REFERENCE.ring_entry * entry
    out["ring_point"] = (per_ring[m] - per_ring[10]) / (m - 10)
    out["ring_fixed"] = per_ring[m] - m * out["ring_point"]
    critical = rings("critical", m, 20000, beta=0.02) - rings("jump-poisson", m, 20000)
    out["partner"] = critical / 20000 / (m / 0.02)

    rng = np.random.default_rng(0)
    clouds = {n: rng.standard_normal((n, d + 1)) for n in (8, 64, 4096)}
    predict = {n: cpu_seconds(lambda: _cloud_predictor(clouds[n], train), repeats)
               for n in (64, 4096)}
    out["PREDICT"] = (predict[4096] - predict[64]) / (4096 - 64) / m

    sizes = (64, 128, 256, 384, 500)
    pairs = {k: (rng.standard_normal((k, d + 1)), rng.standard_normal((k, d + 1)))
             for k in sizes}
    w2 = [cpu_seconds(lambda: wasserstein2(*pairs[k]), repeats) for k in sizes]
    out["W2_SQUARE"], out["W2_CUBE"] = _least_squares([[k ** 2, k ** 3] for k in sizes], w2)

    def distance():
        predictor_distance(_cloud_predictor(clouds[8], train),
                           _cloud_predictor(clouds[8], train))
        wasserstein2(clouds[8], clouds[8])
    out["DISTANCE"] = cpu_seconds(distance, repeats) - (
        out["PREDICT"] * 16 * m + out["W2_SQUARE"] * 64 + out["W2_CUBE"] * 512)

    settings = CellSettings(["jump-poisson"], 0.01, LimitConstants(alpha=1.0), n_times=2,
                            data=(data.inputs, data.targets), w2_particles=8)
    measured = cpu_seconds(lambda: measure_distances(8, 0.01, 0.5, settings, seed=0), repeats)
    # the model's estimate with these constants, its CELL term replaced by the measurement
    use(out)
    out["CELL"] = measured - (estimate_cost(8, 0.01, 0.5, settings)[1] - cm.CELL)
    return out


#: Cells at the scans' and the five-phase check's sizes: (label, width, τ_n, q_n, limits,
#: horizon, options).
CHECKS = [
    ("penalized, n = 256", 256, 256 ** -1.5, 1 / 256,
     {"wgf": {}, "penalized-wgf": dict(beta=1.0), "critical": dict(alpha=1.0, beta=1.0)},
     1.0, dict(n_times=5, w2_particles=32)),
    ("WGF, n = 512", 512, 0.5 * 512 ** -0.5, 0.7,
     {"wgf": {}, "jump-poisson": dict(alpha=1.0)}, 2.0, dict(n_times=5, w2_particles=32)),
    ("Bernoulli, n = 200, coupled", 200, 1.0, 0.3,
     {"jump-bernoulli": dict(alpha=1 / 0.3, tau=1.0), "wgf": {}}, 4.0,
     dict(coupled=("ram", "gd"))),
    ("critical, n = 400", 400, 1 / 400, 1 / 400,
     {"critical": dict(alpha=1.0, beta=1.0), "jump-poisson": dict(alpha=1.0), "wgf": {}},
     2.0, {}),
]


def checks(repeats):
    """(label, estimate, measured) of :data:`CHECKS`."""
    data = toy()
    for label, width, tau, keep, limits, horizon, options in CHECKS:
        settings = CellSettings(limits, horizon, LimitConstants(), data=(data.inputs,
                                                                          data.targets),
                                **options)
        measured = cpu_seconds(lambda: measure_distances(width, tau, keep, settings, seed=0),
                               repeats)
        yield label, estimate_cost(width, tau, keep, settings)[1], measured


def records(directory):
    """(cells, estimated seconds, recorded CPU seconds) of the finished cells of a scan
    directory."""
    from phase_diagram.scan import config_from_dict
    from phase_diagram.scan.cells import build_cells
    from phase_diagram.scan.runner import scan_seconds

    manifest = json.loads((Path(directory) / "manifest.json").read_text())
    config = config_from_dict(manifest["config"], allow_import=True)
    count, estimate, cpu = 0, 0.0, 0.0
    for cell, seconds in zip(build_cells(config), scan_seconds(config, allow_import=True)):
        path = Path(directory) / "cells" / f"{cell.key}.json"
        if path.exists():
            count, estimate = count + 1, estimate + seconds
            cpu += json.loads(path.read_text())["cpu"]
    return count, estimate, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--records", nargs="*", default=[])
    args = parser.parse_args()
    numba.set_num_threads(1)
    print(machine_header())
    print(f"{'constant':12s} {'model':>10s} {'measured':>10s}")
    model = model_constants()
    measured = fixed_costs(args.repeats)
    for name, value in measured.items():
        print(f"{name:12s} {model.get(name, float('nan')):10.3g} {value:10.3g}", flush=True)
    use(model)                          # the checks use the model's own constants
    print(f"\n{'cell':30s} {'estimate s':>10s} {'CPU s':>8s} {'ratio':>6s}")
    for label, estimate, measured in checks(args.repeats):
        print(f"{label:30s} {estimate:10.3g} {measured:8.3g} {estimate / measured:6.2f}",
              flush=True)
    for directory in args.records:
        count, estimate, cpu = records(directory)
        print(f"{directory}: {count} cells, estimate {estimate:.1f} CPU-s, recorded "
              f"{cpu:.1f} CPU-s, ratio {estimate / cpu:.2f}")


if __name__ == "__main__":
    main()
