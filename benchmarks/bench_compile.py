"""Numba compile time per kernel module, cold (empty cache) and warm (cache hits).

Each warm-up task of :mod:`meanfield_dropout.warmup` (a tiny public call that compiles the
kernels of one part of the package for one dtype: the serial twins,
:mod:`meanfield_dropout.kernels.twins`, as a small run), then what the parallel kernels of a
large run add (row ``+ parallel``), runs in a fresh child process twice: first
on an empty ``NUMBA_CACHE_DIR`` (a temporary directory: cold, Numba compiles), then again in
a new process on the cache the first one wrote (warm: Numba loads). The child records Numba's
``numba:compile`` events (:mod:`numba.core.event`) with the wall and CPU time of each compile
less the compiles nested in it (a kernel's callees), and the time of every cache load. CPU is
the thread's CPU time: on a shared machine it is the cost, the wall time also counts waiting.

Tables: per task (first call, compile, kernels and specialisations compiled), per kernel
module (compile time of the module's own functions, loads when warm) and the kernels that
cost most. With ``--demo`` it also times ``python -m meanfield_dropout demo`` end to end, cold
and warm (wall and CPU time of the child process).

Run: ``python benchmarks/bench_compile.py [--dtypes float64,float32] [--tasks simulate,...]
[--demo]``.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
KERNELS = "meanfield_dropout.kernels."


def _child(tasks):
    """Run ``tasks`` ((name, dtype) pairs) in this process; print one JSON record."""
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    import numba.core.caching as caching
    import numba.core.event as event
    from meanfield_dropout import warmup
    from meanfield_dropout.runtime import compiling
    imported = (time.perf_counter() - start_wall, time.process_time() - start_cpu)

    compiles, loads, stack = [], [], []

    class Timer(event.Listener):
        def on_start(self, ev):
            stack.append([time.perf_counter(), time.thread_time(), 0.0, 0.0])

        def on_end(self, ev):
            wall0, cpu0, child_wall, child_cpu = stack.pop()
            wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
            if stack:
                stack[-1][2] += wall
                stack[-1][3] += cpu
            func = ev.data["dispatcher"].py_func
            compiles.append(dict(module=func.__module__, name=func.__qualname__,
                                 sig=str(ev.data["args"]), wall=wall - child_wall,
                                 cpu=cpu - child_cpu, task=current[0]))

    original = caching.Cache.load_overload

    def timed_load(self, sig, target_context):
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        result = original(self, sig, target_context)
        if result is not None:
            loads.append(dict(module=self._py_func.__module__, name=self._py_func.__qualname__,
                              wall=time.perf_counter() - wall0,
                              cpu=time.thread_time() - cpu0, task=current[0]))
        return result

    caching.Cache.load_overload = timed_load
    current = [None]
    runs = []
    with event.install_listener("numba:compile", Timer()):
        for name, dtype in tasks:
            # the task's tiny runs (the serial twins), then what the parallel kernels add
            for label, both in ((f"{name} {dtype}", False), ("  + parallel", True)):
                current[0] = f"{name} {dtype}" + (" parallel" if both else "")
                compiling._both_twins[0] = both
                compiling._compiled.clear()        # compile_once asks again, for both twins
                wall0, cpu0 = time.perf_counter(), time.process_time()
                warmup.TASKS[name][0](dtype)
                runs.append(dict(task=current[0], label=label,
                                 wall=time.perf_counter() - wall0,
                                 cpu=time.process_time() - cpu0))
            compiling._both_twins[0] = False
    print(json.dumps(dict(imported=imported, runs=runs, compiles=compiles, loads=loads)))


def _run_child(tasks, cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    env.pop("NUMBA_DISABLE_CACHE", None)
    out = subprocess.run([sys.executable, __file__, "--child",
                          ",".join(f"{n}:{d}" for n, d in tasks)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _timed_command(argv, cache):
    """Wall and CPU seconds (user + system) of a child process."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _load():
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _report(cold, warm):
    print(f"{'task':<18}{'cold wall':>10}{'cold CPU':>10}{'compile CPU':>12}{'kernels':>9}"
          f"{'specs':>7}{'warm wall':>11}{'warm CPU':>10}{'loads':>7}")
    for c_run, w_run in zip(cold["runs"], warm["runs"]):
        task = c_run["task"]
        mine = [c for c in cold["compiles"] if c["task"] == task]
        loads = [x for x in warm["loads"] if x["task"] == task]
        print(f"{c_run['label']:<18}{c_run['wall']:>10.1f}{c_run['cpu']:>10.1f}"
              f"{sum(c['cpu'] for c in mine):>12.1f}{len({c['name'] for c in mine}):>9}"
              f"{len(mine):>7}{w_run['wall']:>11.2f}{w_run['cpu']:>10.2f}{len(loads):>7}")
    print(f"{'import':<18}{cold['imported'][0]:>10.1f}{cold['imported'][1]:>10.1f}"
          f"{'':>12}{'':>9}{'':>7}{warm['imported'][0]:>11.2f}{warm['imported'][1]:>10.2f}")
    total = [sum(r[k] for r in run["runs"]) for run in (cold, warm) for k in ("wall", "cpu")]
    print(f"{'total':<18}{total[0]:>10.1f}{total[1]:>10.1f}"
          f"{sum(c['cpu'] for c in cold['compiles']):>12.1f}"
          f"{len({c['name'] for c in cold['compiles']}):>9}{len(cold['compiles']):>7}"
          f"{total[2]:>11.2f}{total[3]:>10.2f}{len(warm['loads']):>7}")

    print(f"\n{'kernel module':<18}{'compile wall':>13}{'compile CPU':>12}{'kernels':>9}"
          f"{'specs':>7}{'warm load wall':>16}{'loads':>7}")
    modules = sorted({c["module"] for c in cold["compiles"]} | {x["module"] for x in warm["loads"]})
    for module in modules:
        mine = [c for c in cold["compiles"] if c["module"] == module]
        loads = [x for x in warm["loads"] if x["module"] == module]
        print(f"{module.replace(KERNELS, ''):<18}{sum(c['wall'] for c in mine):>13.1f}"
              f"{sum(c['cpu'] for c in mine):>12.1f}{len({c['name'] for c in mine}):>9}"
              f"{len(mine):>7}{sum(x['wall'] for x in loads):>16.2f}{len(loads):>7}")

    print("\nkernels by compile CPU (all their specialisations; s = seconds)")
    by_kernel = defaultdict(list)
    for c in cold["compiles"]:
        by_kernel[(c["module"].replace(KERNELS, ""), c["name"])].append(c["cpu"])
    for (module, name), cpus in sorted(by_kernel.items(), key=lambda kv: -sum(kv[1]))[:15]:
        print(f"  {module + '.' + name:<45}{sum(cpus):>7.1f} s  {len(cpus)} specialisation(s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--tasks", default=None, help="comma list (default: all)")
    parser.add_argument("--demo", action="store_true",
                        help="also time `python -m meanfield_dropout demo` cold and warm")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child([tuple(item.split(":")) for item in args.child.split(",")])
        return
    from meanfield_dropout import warmup
    from meanfield_dropout.runtime import compiling
    from timing import machine_header
    import numba
    tasks = [t for t in warmup.task_list(args.dtypes.split(","))
             if args.tasks is None or t[0] in args.tasks.split(",")]
    print(machine_header())
    print(f"bench_compile: Numba {numba.__version__}, Python {platform.python_version()}")
    print(f"at start: {_load()} (the CPU may be shared: CPU time is the cost)")
    with tempfile.TemporaryDirectory(prefix="bench-compile-") as cache:
        cold = _run_child(tasks, cache)
        warm = _run_child(tasks, cache)
    print(f"at end: {_load()}\n")
    _report(cold, warm)
    if args.demo:
        with tempfile.TemporaryDirectory(prefix="bench-compile-demo-") as cache:
            argv = [sys.executable, "-m", "meanfield_dropout", "demo", "--no-progress",
                    "--out", str(Path(cache) / "demo.png")]
            cold_demo = _timed_command(argv, cache)
            warm_demo = _timed_command(argv, cache)
        print(f"\ndemo (python -m meanfield_dropout demo, whole process): cold {cold_demo[0]:.1f} s "
              f"wall, {cold_demo[1]:.1f} s CPU; warm {warm_demo[0]:.1f} s wall, "
              f"{warm_demo[1]:.1f} s CPU; {_load()}")


if __name__ == "__main__":
    main()
