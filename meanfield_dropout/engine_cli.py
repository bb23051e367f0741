"""Sub-commands ``simulate`` and ``demo`` of ``python -m meanfield_dropout``."""
import time
from pathlib import Path

import numpy as np

from .data import teacher_student
from .engine import VARIANTS, simulate
from .metrics import coupled_rms

DEMO_VARIANTS = ("gd", "dropout", "ram", "pn_ram")
LABELS = {"gd": "no dropout (GD)", "dropout": "dropout", "ram": "RaM", "pn": "PN",
          "pn_ram": "PN + RaM", "penalized": "penalized GD"}
#: One colour per variant, the same in every figure.
COLORS = {"gd": "tab:blue", "dropout": "tab:orange", "ram": "tab:green", "pn": "tab:purple",
          "pn_ram": "tab:red", "penalized": "tab:brown"}


def _variant_list(text):
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        raise ValueError(f"--variants must be a comma-separated subset of {list(VARIANTS)}, "
                         f"got {text!r}")
    return names


def add_commands(sub):
    """Register ``simulate`` and ``demo``."""
    sim = sub.add_parser("simulate", help="train coupled variants on the teacher-student task")
    sim.add_argument("--width", type=int, required=True, help="neurons n")
    sim.add_argument("--keep-prob", type=float, default=1.0, help="keep probability q")
    sim.add_argument("--master-lr", type=float, required=True, help="master learning rate tau")
    sim.add_argument("--steps", type=int, required=True)
    sim.add_argument("--variants", default="dropout", help=f"comma list of {list(VARIANTS)}")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--data-seed", type=int, default=0, help="seed of the teacher and data")
    sim.add_argument("--dim", type=int, default=20, help="input dimension d")
    sim.add_argument("--data-points", type=int, default=500, help="training points m")
    sim.add_argument("--activation", default="relu")
    sim.add_argument("--bias", action="store_true")
    sim.add_argument("--loss", default="square", choices=("square", "logistic"))
    sim.add_argument("--batch-size", type=int, default=None, help="minibatch B (full if unset)")
    sim.add_argument("--loss-every", type=int, default=1)
    sim.add_argument("--snapshot-every", type=int, default=0,
                     help="store particles every this many steps (0: first and last only)")
    sim.add_argument("--snapshot-neurons", type=int, default=None,
                     help="keep only the first k neurons in snapshots")
    sim.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    sim.add_argument("--out", required=True, help="result file (.npz)")
    sim.set_defaults(run=_run_simulate)

    demo = sub.add_parser("demo", help="small teacher-student comparison -> figures/demo.png")
    demo.add_argument("--width", type=int, default=1000)
    demo.add_argument("--steps", type=int, default=300)
    demo.add_argument("--out", default="figures/demo.png")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_run_demo)


def _run_simulate(args):
    variants = _variant_list(args.variants)
    data = teacher_student(dim=args.dim, data_points=args.data_points, seed=args.data_seed)
    if args.snapshot_every < 0:
        raise ValueError(f"--snapshot-every must be >= 0, got {args.snapshot_every}")
    snaps = [0, args.steps] if args.snapshot_every == 0 else \
        list(range(0, args.steps + 1, args.snapshot_every)) + [args.steps]
    result = simulate(data.inputs, data.targets, width=args.width, keep_prob=args.keep_prob,
                      master_lr=args.master_lr, steps=args.steps, variants=variants,
                      seed=args.seed, activation=args.activation, bias=args.bias,
                      loss=args.loss, batch_size=args.batch_size,
                      val_inputs=data.val_inputs, val_targets=data.val_targets,
                      loss_every=args.loss_every, snapshot_steps=snaps,
                      snapshot_neurons=args.snapshot_neurons, dtype=args.dtype)
    result.save(args.out)
    for name in variants:
        print(f"{name:>10}: train loss {result.train_loss[name][-1]:.5g}, "
              f"validation loss {result.val_loss[name][-1]:.5g}")
    print(f"wrote {args.out}")


def _run_demo(args):
    start = time.perf_counter()
    data = teacher_student(seed=0)
    snaps = np.arange(0, args.steps + 1, max(1, args.steps // 60))
    result = simulate(data.inputs, data.targets, width=args.width, keep_prob=0.7,
                      master_lr=0.5, steps=args.steps, variants=DEMO_VARIANTS,
                      seed=args.seed, val_inputs=data.val_inputs,
                      val_targets=data.val_targets, snapshot_steps=snaps)
    plot_demo(result, args.out)
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s")


def plot_demo(result, out):
    """Loss curves of the variants and their coupled RMS distance to dropout."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.6), layout="constrained")
    ax_train, ax_val, ax_dist = fig.subplots(1, 3)
    for name in result.variants:
        style = dict(label=LABELS[name], color=COLORS[name])
        ax_train.plot(result.loss_steps, result.train_loss[name], **style)
        ax_val.plot(result.loss_steps, result.val_loss[name], **style)
        if name != "dropout":
            dist = [coupled_rms(a, b) for a, b in
                    zip(result.snapshots["dropout"], result.snapshots[name])]
            ax_dist.plot(result.snapshot_steps, dist, **style)
    s = result.settings
    for ax, title in ((ax_train, "train loss"), (ax_val, "validation loss")):
        ax.set(yscale="log", xlabel="step k", ylabel="½ mean (f − y)²", title=title)
        ax.legend()
    ax_dist.set(xlabel="step k", ylabel="coupled RMS distance to dropout",
                title="distance to dropout (same masks)")
    ax_dist.legend()
    fig.suptitle(f"teacher–student, width n={s['width']}, keep q={s['keep_prob']}, "
                 f"master lr τ={s['master_lr']}")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
