"""Measured seconds of dropout and of each limit against the phase finder's cost estimates.

``phase_diagram.finder.plugin.estimate_costs`` decides which limits ``locate`` and ``map`` run within
their budget. Its constants (a fixed cost plus, per neuron, a cost per data point and per data
point and particle entry) were fitted to these measurements: one Numba thread, tanh, on the
teacher–student problem (m = 40, d = 4) and on MNIST 4 vs 7 pooled to 7×7 (m = 600, d = 49)
and at full size (d = 784). Each row prints the best of ``--repeats`` runs of the public
functions and the estimate's ratio to it (1 = exact; the budget only needs the right order).

Run: ``python benchmarks/bench_plugin_costs.py [--widths 256,1024] [--repeats 3]`` (needs the
``data`` extra for MNIST).
"""
import argparse

import numba

from meanfield_dropout import simulate
from meanfield_dropout.data import toy
from meanfield_dropout.data import mnist47
from meanfield_dropout.limits import LimitConstants, simulate_limit
from meanfield_dropout.network import network_data
from phase_diagram.finder.plugin import FLOW_DT, estimate_costs
from timing import best_seconds, machine_header

LR, KEEP = 0.01, 0.5


def measure(inputs, targets, width, repeats):
    """Seconds of: one dropout step, one Heun step, one ring, one critical ring (50 partners)."""
    steps, horizon, ring_time, alpha = 20, 0.2, 0.05, 0.05

    def dropout():
        simulate(inputs, targets, master_lr=LR, steps=steps, width=width, keep_prob=KEEP,
                 variants=("dropout",), activation="tanh", loss_every=steps, progress=False)

    train = network_data(inputs, targets, activation="tanh")

    def flow():
        simulate_limit("wgf", train, times=[0.0, horizon], limit_particles=width, dt=FLOW_DT)

    def rings(limit, beta=None):
        return lambda: simulate_limit(limit, train, LimitConstants(alpha=alpha, beta=beta),
                                      times=[0.0, ring_time], limit_particles=width)

    count = width * ring_time / alpha
    return {"dropout step": best_seconds(dropout, repeats) / steps,
            "Heun step": best_seconds(flow, repeats) / (horizon / FLOW_DT),
            "ring": best_seconds(rings("jump-poisson"), repeats) / count,
            "critical ring": best_seconds(rings("critical", beta=0.02), repeats) / count}


def estimated(width, data_points, dim):
    """The same four costs from ``estimate_costs`` (one unit each)."""
    horizon = 1.0
    c = estimate_costs(width, LR, KEEP, horizon, data_points, dim)
    rings = width * horizon / (LR / KEEP)
    critical = estimate_costs(width, LR, 1 / (1 + 0.02 * width), horizon, data_points, dim)
    critical_rings = width * horizon / (LR * (1 + 0.02 * width))
    return {"dropout step": c["dropout"] / (horizon / LR),
            "Heun step": c["wgf"] / (horizon / FLOW_DT),
            "ring": c["jump-poisson"] / rings,
            "critical ring": critical["critical"] / critical_rings}


def problems():
    data = toy()
    yield "toy", data.inputs, data.targets
    try:
        for pool in (4, 1):
            images = mnist47(pool=pool)
            yield f"MNIST 4/7 d={images.inputs.shape[1]}", images.inputs, images.targets
    except (ImportError, ValueError) as exc:
        print(f"(MNIST left out: {exc})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="256,1024")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    numba.set_num_threads(1)
    print(machine_header())
    print(f"{'problem':22s} {'n':>5s} {'unit':14s} {'measured s':>11s} {'estimate/measured':>18s}")
    for name, inputs, targets in problems():
        for width in (int(w) for w in args.widths.split(",")):
            got = measure(inputs, targets, width, args.repeats)
            guess = estimated(width, *inputs.shape)
            for unit, seconds in got.items():
                print(f"{name:22s} {width:5d} {unit:14s} {seconds:11.3g} "
                      f"{guess[unit] / seconds:18.2f}", flush=True)


if __name__ == "__main__":
    main()
