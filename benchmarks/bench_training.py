"""Training speed of gdcore against its peers, side by side in one run.

Usage::

    python benchmarks/bench_training.py [--quick] [--output benchmarks/results/NAME.md]
                                        [--with-keras-large] [--no-jax] [--sections seed,large,cold,profile]

Sections (``README.md`` says what each row measures and what each peer does per step):

1. the seed's two configurations (100 samples, 25 epochs, batch 20);
2. 1,000,000 samples, one epoch: the seed's 1-8-1 network at batch 32, and
   a 1-64-1 network at batch 1024;
3. cold start in fresh processes (empty and warm Numba cache, TensorFlow, JAX);
4. the project's speed targets, met or not;
5. where gdcore's time goes (``profile_gdcore.py``).

Every timed run is complete training from the same start; implementations
take turns (rounds of back-to-back blocks, see ``measure``), so a slow phase
of this shared machine reaches all of them. Medians; ratios are peer time /
gdcore (Numba engine, plain numerics) time on the same workload.
"""

import argparse
import datetime
import gc
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402
from profile_gdcore import format_seconds  # noqa: E402

REFERENCE = "gdcore, Numba engine"
KERAS = "Keras `fit` (TensorFlow, `jit_compile=False`)"
MLP = "scikit-learn `MLPRegressor.partial_fit`"
JAX = "JAX, jit + `lax.scan`"
TARGETS = {"seed": 5000.0, "large": 25.0}
SECTIONS = ("seed", "large", "cold", "profile")


# --- what runs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Implementation:
    label: str
    build: object  # workload -> trainer
    applies: object = lambda workload: True


def implementations(with_jax: bool, with_keras: bool) -> list[Implementation]:
    rows = [
        Implementation(REFERENCE, peers.GdcoreTrainer),
        Implementation("gdcore, Numba engine, `numerics=\"tensorflow\"`",
                       lambda w: peers.GdcoreTrainer(w, numerics="tensorflow")),
        Implementation("gdcore, NumPy engine", lambda w: peers.GdcoreTrainer(w, engine="numpy")),
        Implementation("NumPy loop, hand-written", peers.NumpyLoopTrainer),
    ]
    if with_jax:
        rows.append(Implementation(JAX, peers.JaxTrainer))
    rows += [
        Implementation(MLP, peers.MLPRegressorTrainer),
        Implementation("scikit-learn `SGDRegressor.partial_fit` (batch 1)", peers.SGDRegressorTrainer,
                       applies=lambda w: w.hidden_units is None),
    ]
    if with_keras:
        rows.append(Implementation(KERAS, peers.KerasTrainer))
    return rows


# --- timing -----------------------------------------------------------------------------------------


@dataclass
class Result:
    times: list = field(default_factory=list)
    first_in_block: list = field(default_factory=list)  # runs right after another implementation ran
    quality: float | None = None  # of the trained model, by ``measure``'s ``quality`` (MSE on the training data)
    error: str | None = None

    @property
    def mse(self) -> float | None:
        return self.quality

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None

    @property
    def median_first_in_block(self) -> float | None:
        return statistics.median(self.first_in_block) if self.first_in_block else None


def repetitions(first_seconds: float, budget: float) -> int:
    """>= 7 for runs under 0.2 s (up to 51, within ``budget``), 5 under 1 s, 3 above."""
    if first_seconds >= 1.0:
        return 3
    if first_seconds >= 0.2:
        return 5
    return int(min(51, max(7, budget / max(first_seconds, 1e-9))))


ROUNDS = 3


def _short_error(error: Exception) -> str:
    text = f"{type(error).__name__}: {error}".splitlines()[0]
    return text[:160]


def _timed_run(trainer) -> float:
    """One untimed reset, one timed run with the garbage collector paused (as ``timeit`` does)."""
    trainer.reset()
    gc.disable()
    try:
        start = time.perf_counter()
        trainer.train()
        return time.perf_counter() - start
    finally:
        gc.enable()


def _collect_between_blocks() -> None:
    # A full collection costs ~0.3 s with TensorFlow and JAX loaded, and evicts the caches of whatever
    # runs next. Once survivors are frozen, collections are cheap; they happen here, outside the blocks.
    gc.collect()
    gc.freeze()


def measure(trainers: dict, budget: float, max_reps: dict, log, quality=peers.mse) -> dict[str, Result]:
    """Warm every trainer up, then time them in turns.

    One run each gives the number of repetitions; the rest are made in
    ``ROUNDS`` rounds, each implementation running its share back to back
    (a block) before the next one takes over. Drift of the machine thus
    reaches every implementation, while most runs find their own code and
    data in cache, as in a loop of fits; the first run of each block shows
    the cost of finding them evicted. The garbage collector is paused during
    each timed run and collects between blocks. ``quality(trainer, workload)``
    scores each trained model afterwards.
    """
    results = {label: Result() for label in trainers}
    for label, trainer in trainers.items():
        log(f"  warm-up: {label}")
        try:
            trainer.warm_up()
        except Exception as error:  # an optional peer, or a numerics profile under development
            results[label].error = _short_error(error)
    wanted = {}
    for label, trainer in trainers.items():
        if results[label].error is not None:
            continue
        _collect_between_blocks()
        try:
            seconds = _timed_run(trainer)
        except Exception as error:
            results[label].error = _short_error(error)
            continue
        results[label].times.append(seconds)
        results[label].first_in_block.append(seconds)
        wanted[label] = min(repetitions(seconds, budget), max_reps.get(label) or 10**6)
        log(f"  {label}: first run {format_seconds(seconds)}, {wanted[label]} repetitions")
    for round_index in range(ROUNDS):
        for label in wanted:
            result = results[label]
            remaining = wanted[label] - len(result.times)
            block = -(-remaining // (ROUNDS - round_index)) if remaining > 0 else 0
            if block:
                _collect_between_blocks()
            for position in range(block):
                if result.error is not None:
                    break
                try:
                    seconds = _timed_run(trainers[label])
                except Exception as error:
                    result.error = _short_error(error)
                    break
                result.times.append(seconds)
                if position == 0:
                    result.first_in_block.append(seconds)
    gc.unfreeze()
    for label, trainer in trainers.items():
        if results[label].error is None:
            try:
                results[label].quality = quality(trainer, trainer.workload)
            except Exception as error:
                results[label].error = _short_error(error)
    return results


def run_section(workloads, rows: list[Implementation], budget: float, log, max_reps=None) -> dict:
    """results[workload.name][label] for every implementation that applies."""
    results = {}
    for workload in workloads:
        log(f"{workload.name}")
        trainers, errors = {}, {}
        for row in rows:
            if not row.applies(workload):
                continue
            try:
                trainers[row.label] = row.build(workload)
            except Exception as error:
                errors[row.label] = Result(error=_short_error(error))
        caps = (max_reps or {}).get(workload.name, {})
        results[workload.name] = {**measure(trainers, budget, caps, log), **errors}
    return results


# --- cold start -----------------------------------------------------------------------------------------


def cold_start(workload, runs: int, with_jax: bool, log) -> dict[str, list[dict]]:
    """Fresh processes: gdcore with an empty then a warm NUMBA_CACHE_DIR, Keras, JAX; ``runs`` rounds."""
    from cold_start import save_workload

    outcomes: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="gdcore-bench-") as scratch:
        data = Path(scratch) / "workload.npz"
        save_workload(workload, data)
        base_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        for round_index in range(runs):
            cache = Path(scratch) / f"numba-cache-{round_index}"
            cache.mkdir()
            auto_cache = Path(scratch) / f"numba-cache-auto-{round_index}"
            auto_cache.mkdir()
            plan = [("gdcore default engine (\"auto\"), empty Numba cache", "gdcore-auto", auto_cache),
                    ("gdcore default engine (\"auto\"), after its background build", "gdcore-auto", auto_cache),
                    ("gdcore `engine=\"numba\"`, empty Numba cache", "gdcore", cache),
                    ("gdcore `engine=\"numba\"`, warm Numba cache", "gdcore", cache),
                    ("Keras (`import tensorflow`, `keras`)", "keras", None)]
            if with_jax:
                plan.append(("JAX (`import jax`)", "jax", None))
            for label, library, cache_dir in plan:
                env = dict(base_env)
                if cache_dir is not None:
                    env["NUMBA_CACHE_DIR"] = str(cache_dir)
                    env["TMPDIR"] = str(cache_dir)  # the background build's locks: this round's own
                log(f"  cold start {round_index + 1}/{runs}: {label}")
                start = time.perf_counter()
                process = subprocess.run([sys.executable, str(HERE / "cold_start.py"), library, str(data)],
                                         capture_output=True, text=True, env=env, cwd=REPO)
                wall = time.perf_counter() - start
                if process.returncode != 0:
                    tail = (process.stderr.strip().splitlines() or ["no output"])[-1]
                    outcomes.setdefault(label, []).append({"error": tail[:160]})
                    continue
                outcome = json.loads(process.stdout.strip().splitlines()[-1])
                outcome["wall_s"] = wall - outcome.get("tail_s", 0.0)
                outcomes.setdefault(label, []).append(outcome)
    return outcomes


# --- report ---------------------------------------------------------------------------------------------


def machine_lines() -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        present = [flag for flag in ("avx2", "fma", "avx512f") if f" {flag}" in text]
        flags = ", ".join(present)
    except OSError:
        pass

    def version(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "gdcore"], cwd=REPO, capture_output=True, text=True).stdout
        commit += " (uncommitted changes under gdcore/)" if dirty.strip() else " (gdcore/ clean)"
    except OSError:
        commit = "unknown"
    libraries = ", ".join(f"{name} {version(name)}" for name in
                          ("numpy", "numba", "pandas", "scikit-learn", "tensorflow-cpu", "keras", "jax", "jaxlib"))
    return [
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Command: `python {' '.join(shlex.quote(a) for a in ['benchmarks/bench_training.py', *sys.argv[1:]])}`",
        f"- Machine: {os.cpu_count()} logical CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu} ({flags}), "
        f"load average at start {os.getloadavg()[0]:.2f}",
        f"- Python {platform.python_version()}; {libraries}",
        f"- gdcore {version('gdcore')} at commit {commit}",
    ]


def gdcore_sources_digest() -> str:
    import hashlib

    import gdcore

    digest = hashlib.sha256()
    for path in sorted(Path(gdcore.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _cell(result: Result | None, reference: Result | None) -> tuple[str, str, str]:
    if result is None:
        return "–", "", ""
    if result.error is not None:
        return f"n/a: {result.error}", "", ""
    median = f"{format_seconds(result.median)} (n={len(result.times)})"
    ratio = ""
    if reference is not None and reference.median:
        ratio = f"{result.median / reference.median:,.1f}x" if result.median / reference.median < 100 else \
            f"{result.median / reference.median:,.0f}x"
    return median, ratio, f"{result.mse:.4g}" if result.mse is not None else ""


def results_table(workloads, results, rows: list[Implementation]) -> list[str]:
    header = "| implementation | " + " | ".join(f"{w.name}: median (runs) | x gdcore | final MSE" for w in workloads) + " |"
    lines = [header, "|---|" + "---:|---:|---:|" * len(workloads)]
    for row in rows:
        cells = []
        present = False
        for workload in workloads:
            result = results[workload.name].get(row.label)
            present = present or result is not None
            cells += _cell(result, results[workload.name].get(REFERENCE))
        if present:
            lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    lines.append("")
    for label in (REFERENCE, JAX):
        notes = []
        for workload in workloads:
            result = results[workload.name].get(label)
            if result is not None and result.error is None and result.first_in_block:
                notes.append(f"{workload.name} {format_seconds(result.median_first_in_block)} "
                             f"(n={len(result.first_in_block)}, against {format_seconds(result.median)} overall)")
        if notes:
            lines += [f"{label}, median of the first run of each block (right after another implementation ran): "
                      + "; ".join(notes) + ".", ""]
    return lines


def cold_table(outcomes: dict[str, list[dict]]) -> list[str]:
    lines = ["| fresh process | wall time | import | first fit (build, compile/trace, train, evaluate) | of which Numba "
             "compiling | compiled loop ready (background) | final MSE | runs |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for label, runs in outcomes.items():
        good = [run for run in runs if "error" not in run]
        if not good:
            lines.append(f"| {label} | n/a: {runs[0]['error']} | | | | | | 0 |")
            continue
        median = {key: statistics.median(run[key] for run in good) for key in ("wall_s", "import_s", "first_fit_s", "mse")}
        compiling = ""
        if all("compile_s" in run for run in good):
            compiling = (f"{format_seconds(statistics.median(run['compile_s'] for run in good))} "
                         f"({statistics.median(run['compiled'] for run in good):.0f} functions)")
            if good[0]["compiled"]:
                slowest = ", ".join(f"`{name}` {format_seconds(seconds)}" for name, seconds in good[0]["slowest"])
                notes.append(f"{label}, the five slowest compilations of the first run (exclusive of the functions "
                             f"they call): {slowest}.")
        ready = (format_seconds(statistics.median(run["ready_s"] for run in good))
                 if all("ready_s" in run for run in good) else "")
        lines.append(f"| {label} | {format_seconds(median['wall_s'])} | {format_seconds(median['import_s'])} | "
                     f"{format_seconds(median['first_fit_s'])} | {compiling} | {ready} | {median['mse']:.4g} | "
                     f"{len(good)} |")
    lines.append("")
    for note in notes:
        lines += [note, ""]
    return lines


def target_lines(seed_workloads, seed_results, large_workload, large_results, quick: bool) -> list[str]:
    lines = ["| target | workload | measured | met |", "|---|---|---:|---|"]

    def ratio(results, label):
        peer, reference = results.get(label), results.get(REFERENCE)
        if peer is None or reference is None or peer.median is None or reference.median is None:
            return None
        return peer.median / reference.median

    for workload in seed_workloads:
        value = ratio(seed_results.get(workload.name, {}), KERAS)
        measured = "not measured" if value is None else f"{value:,.0f}x"
        met = "–" if value is None else ("yes" if value >= TARGETS["seed"] else "**no**")
        lines.append(f"| Keras `fit` / gdcore >= {TARGETS['seed']:,.0f}x | {workload.name} | {measured} | {met} |")
    value = ratio(large_results.get(large_workload.name, {}), MLP)
    measured = "not measured" if value is None else f"{value:,.1f}x"
    met = "–" if value is None else ("yes" if value >= TARGETS["large"] else "**no**")
    if quick and value is not None:
        met += " (quick run: judged on fewer samples than the target's 1e6)"
    lines.append(f"| `MLPRegressor` / gdcore >= {TARGETS['large']:.0f}x | {large_workload.name} | {measured} | {met} |")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Time gdcore's training against Keras, scikit-learn, NumPy and JAX.")
    parser.add_argument("--quick", action="store_true",
                        help="100,000 samples instead of 1e6, shorter timing budgets, one cold-start round")
    parser.add_argument("--output", type=Path, help="also write the Markdown report to this file")
    parser.add_argument("--with-keras-large", action="store_true",
                        help="time Keras fit on the 1e6-sample rows too (one run each, ~80 s at batch 32)")
    parser.add_argument("--no-jax", action="store_true", help="leave JAX out even if it is installed")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)")
    args = parser.parse_args(argv)
    sections = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"--sections: unknown {unknown}; known: {', '.join(SECTIONS)}")

    started = time.perf_counter()

    def log(message):
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)

    import gdcore

    sources_at_start = gdcore_sources_digest()

    with_jax = not args.no_jax and peers.jax_available()
    budget = 0.5 if args.quick else 2.0
    n_large = 100_000 if args.quick else 1_000_000
    header = machine_lines()

    seed = gdcore.datasets.make_regression_dataset(100, noise=1.25, random_state=42)
    seed_workloads = [
        peers.make_workload("linear neuron, SGD 0.01", seed["X"], seed["y"], None, "sgd", 0.01, 20, 25),
        peers.make_workload("1-8-1 sigmoid, Adam 0.1", seed["X"], seed["y"], 8, "adam", 0.1, 20, 25),
    ]
    large = gdcore.datasets.make_regression_dataset(n_large, noise=1.25, random_state=42)
    large_workloads = [
        peers.make_workload("1-8-1, batch 32", large["X"], large["y"], 8, "adam", 0.1, 32, 1),
        peers.make_workload("1-64-1, batch 1024", large["X"], large["y"], 64, "adam", 0.1, 1024, 1),
    ]
    del seed, large

    seed_rows = implementations(with_jax, with_keras=True)
    large_rows = implementations(with_jax, with_keras=args.with_keras_large)
    seed_results = large_results = cold = profile_lines = None
    if "seed" in sections:
        log("== seed configurations")
        seed_results = run_section(seed_workloads, seed_rows, budget, log)
    if "large" in sections:
        log(f"== {n_large:,} samples, one epoch")
        keras_caps = {w.name: {KERAS: 1} for w in large_workloads}
        large_results = run_section(large_workloads, large_rows, budget, log, max_reps=keras_caps)
    if "cold" in sections:
        log("== cold start")
        cold = cold_start(seed_workloads[1], 1 if args.quick else 3, with_jax, log)
    if "profile" in sections:
        log("== gdcore profile")
        from profile_gdcore import report

        profile_lines = report([*seed_workloads, *large_workloads], budget=0.3 if args.quick else 3.0)

    lines = ["# gdcore training benchmark", ""] + header
    lines.append(f"- Load average at end: {os.getloadavg()[0]:.2f}; run took {time.perf_counter() - started:.0f} s")
    if gdcore_sources_digest() != sources_at_start:
        lines.append("- **gdcore's sources changed during the run**: in-process rows use the version imported at the "
                     "start; the cold-start processes may have run a newer one.")
    lines.append("")
    lines += ["All runs float32, warm (compiled or traced before timing), data already in memory. "
              "Median wall time of complete training runs, implementations timed in turns; "
              "`x gdcore` = that median / the median of gdcore's Numba engine (plain numerics) on the same workload. "
              "Final MSE is the training-set error after the run, a check that each run trained.", ""]
    if seed_results is not None:
        lines += ["## 1. Seed configurations: 100 samples, 25 epochs, batch 20", ""]
        lines += results_table(seed_workloads, seed_results, seed_rows)
    if large_results is not None:
        lines += [f"## 2. {n_large:,} samples, one epoch, Adam 0.1", ""]
        lines += results_table(large_workloads, large_results, large_rows)
        if not args.with_keras_large:
            lines += ["Keras left out of this section (`--with-keras-large` adds it, one run per workload).", ""]
    if cold is not None:
        lines += ["## 3. Cold start: a fresh process imports the library and trains the seed 1-8-1 model once", ""]
        lines += cold_table(cold)
        lines += ["Medians over the runs. Wall time includes interpreter start-up and exit; import excludes NumPy "
                  "(already loaded). The warm-cache gdcore process reuses the cache directory the empty-cache process "
                  "just filled.", ""]
    lines += ["## 4. Targets", ""]
    lines += target_lines(seed_workloads, seed_results or {}, large_workloads[0], large_results or {}, args.quick)
    lines.append("")
    if profile_lines is not None:
        lines += ["## 5. Where gdcore's time goes", ""] + profile_lines
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        log(f"written to {args.output}")


if __name__ == "__main__":
    main()
