"""``python -m reference`` (or ``gdcore-reference``): run configurations through gdcore, Keras and scikit-learn.

Prints one progress line per configuration, then a table, and writes a report
folder (``reference-report/`` by default). Exit status: 0 when every checked
comparison is within tolerance (known convention gaps and runs diverging in
both engines included), 1 when one is not, 2 for usage errors or a missing
TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
import time

from reference import configs as configs_module
from reference.compare import CLASSIFICATION_TOLERANCES, DEFAULT_TOLERANCES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reference",
        description="Train the same models in gdcore, Keras (TensorFlow) and scikit-learn from the same initial "
                    "weights on the same batches, and compare weights, loss history and predictions at every epoch.")
    parser.add_argument("--configs", nargs="+", metavar="NAME",
                        help="configurations to run, by name or glob (e.g. 'linear-*'); see --list")
    parser.add_argument("--grid", action="store_true", help="run the full grid instead of the default set")
    parser.add_argument("--dtype", choices=configs_module.DTYPES, help="run every selected configuration in this dtype")
    parser.add_argument("--epochs", type=int, help="epochs per configuration (default: each configuration's, 25)")
    parser.add_argument("--numerics", choices=["plain", "tensorflow"], default="tensorflow",
                        help="gdcore's numerics profile (default: %(default)s, the summation order that reproduces "
                             "Keras bit for bit; 'plain' is gdcore.Sequential's default)")
    parser.add_argument("--engines", nargs="+", choices=["keras", "sklearn"], default=["keras", "sklearn"],
                        help="engines to compare gdcore with (default: both)")
    parser.add_argument("--output", default="reference-report", metavar="DIR", help="report folder (default: %(default)s)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--free", action="store_true",
                        help="impose nothing: Keras and gdcore each run the seeded Keras cell, drawing their own initial "
                             "weights and shuffles (gdcore from its copy of Keras's random streams); Keras only")
    parser.add_argument("--jobs", type=int, metavar="N",
                        help="train the configurations in parallel on a local Dask cluster of N worker processes "
                             "(the results are those of the sequential run)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="train them on an existing Dask cluster instead, e.g. tcp://host:8786 (started with "
                             "'dask scheduler' and 'dask worker ADDRESS'; every worker needs gdcore and reference)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the configurations an earlier run with the same --output finished (each is "
                             "stored in OUTPUT/results/ as soon as it finishes) and run only the others")
    parser.add_argument("--list", action="store_true", help="list the configuration names and exit")
    return parser


def _selected(arguments) -> list[configs_module.Config]:
    candidates = configs_module.full_grid() if arguments.grid else configs_module.default_configs()
    chosen = configs_module.select(candidates, arguments.configs) if arguments.configs else candidates
    changes = {key: value for key, value in (("dtype", arguments.dtype), ("epochs", arguments.epochs),
                                             ("numerics", arguments.numerics)) if value is not None}
    unique = []
    for config in chosen:
        config = config.replace(**changes)
        if config not in unique:
            unique.append(config)
    return unique


def _verify_profile() -> tuple[str, str]:
    """``(lines for the terminal, full text for the report)``: gdcore.numerics.verify_tensorflow_profile(), then
    gdcore.numerics.verify_random_streams()."""
    line, text = _verify_operations()
    streams = _verify_streams()
    return f"{line}\n{streams}", f"{text}\n\n{streams}\n" if text else text


def _verify_streams() -> str:
    name = "gdcore.numerics.verify_random_streams()"
    try:
        from gdcore.numerics import verify_random_streams

        outcome = verify_random_streams()
    except Exception as error:  # reported, not raised: the comparisons still run
        return f"{name}: not available ({type(error).__name__}: {str(error)[:150]})"
    exact = int((outcome["bit_identical"] == outcome["cases"]).sum())
    return (f"{name}: {exact} of {len(outcome)} streams bit-identical ({int(outcome['bit_identical'].sum())} of "
            f"{int(outcome['cases'].sum())} draws; {outcome.attrs.get('versions', '')})")


def _verify_operations() -> tuple[str, str]:
    name = "gdcore.numerics.verify_tensorflow_profile()"
    try:
        from gdcore import numerics

        verify = getattr(numerics, "verify_tensorflow_profile", None)
        if verify is None:
            return f"{name}: not available", ""
        outcome = verify()
    except Exception as error:  # another engineer's work in progress: any failure is reported, not raised
        return f"{name}: not available ({type(error).__name__}: {str(error)[:150]})", ""
    columns = set(getattr(outcome, "columns", []))
    if {"cases", "bit_identical"} <= columns:
        groups = len(outcome)
        exact = int((outcome["bit_identical"] == outcome["cases"]).sum())
        values, same = int(outcome["cases"].sum()), int(outcome["bit_identical"].sum())
        worst = f", worst {int(outcome['max_ulp'].max())} ulp" if "max_ulp" in columns else ""
        line = f"{name}: {exact} of {groups} operation groups bit-identical ({same} of {values} values{worst})"
        try:
            from gdcore.numerics.verify import format_report

            text = format_report(outcome)
        except Exception:
            text = outcome.to_string()
        return line, text
    text = str(outcome)
    return f"{name}: {text.splitlines()[0] if text else text}", text


def _tolerances(tolerances) -> str:
    return ", ".join(f"{dtype} rtol {tol.rtol:g} atol {tol.atol:g}" for dtype, tol in tolerances.items())


def _progress_line(index: int, total: int, result) -> str:
    parts = []
    for comparison in result.comparisons:
        engines = comparison.engines.removeprefix("gdcore vs ")
        if comparison.status == "skipped":
            parts.append(f"{engines}: skipped")
        elif comparison.status == "info":
            parts.append(f"{engines}: info")
        else:
            worst = comparison.rows["max_rel_diff"].max() if not comparison.rows.empty else float("nan")
            parts.append(f"{engines}: {comparison.status} (rel {worst:.1e}, "
                         f"{comparison.bit_identical_epochs}/{comparison.epochs_compared} bit-identical)")
    return f"[{index:>{len(str(total))}}/{total}] {result.config.name}  {result.seconds:5.1f} s  " + "; ".join(parts)


class _ResultStore:
    """Finished configurations, one pickle each in ``OUTPUT/results/``, written as each finishes (``--resume``)."""

    def __init__(self, output):
        from pathlib import Path

        self.folder = Path(output) / "results"

    def _path(self, task):
        config, engines, free = task
        return self.folder / f"{config.name}{'-free' if free else ''}-{'+'.join(engines)}.pickle"

    def save(self, task, result) -> None:
        import pickle

        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self._path(task).with_suffix(".partial")
        partial.write_bytes(pickle.dumps((task, result)))
        partial.replace(self._path(task))  # complete or absent, even if the run is interrupted here

    def load(self, task):
        """The stored result of exactly this task (configuration, engines, --free), or None."""
        import pickle

        path = self._path(task)
        if not path.exists():
            return None
        stored, result = pickle.loads(path.read_bytes())
        try:
            return result if stored == task else None
        except AttributeError:  # stored by a version whose Config had fewer fields: run it again
            return None


def main(argv=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    arguments = _parser().parse_args(argv)
    try:
        selected = _selected(arguments)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if arguments.jobs is not None and arguments.jobs < 1:
        print(f"error: --jobs must be a positive number of worker processes, got {arguments.jobs}", file=sys.stderr)
        return 2
    if arguments.list:
        print("\n".join(config.name for config in selected))
        return 0
    if arguments.free:
        arguments.engines = ["keras"]
    if "keras" in arguments.engines:
        from reference.keras_driver import import_keras

        try:
            import_keras()
        except ImportError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    from reference.report import format_table, versions, write_report
    from reference.runner import ConfigResult, run_task, summary_frame

    start = time.perf_counter()
    found = versions()
    print("gdcore reference: " + ", ".join(f"{name} {version}" for name, version in found.items()))
    from gdcore.numerics import cpu_info

    machine = "machine: " + cpu_info().summary()
    print(machine)
    verify, verify_text = _verify_profile()
    print(verify)
    print(f"{len(selected)} configuration(s); gdcore numerics: {arguments.numerics}; tolerances: " +
          _tolerances(DEFAULT_TOLERANCES) + "; cross-entropies vs Keras under plain numerics: " +
          _tolerances(CLASSIFICATION_TOLERANCES))
    tasks = [(config, tuple(arguments.engines), arguments.free) for config in selected]
    store = _ResultStore(arguments.output)
    outcomes = [store.load(task) if arguments.resume else None for task in tasks]
    todo = [index for index, outcome in enumerate(outcomes) if outcome is None]
    if len(todo) < len(tasks):
        print(f"resuming: {len(tasks) - len(todo)} configuration(s) already finished in {store.folder}/")

    def progress(position, outcome):  # in completion order; the table below is in configuration order
        index = todo[position]
        outcomes[index] = outcome
        if isinstance(outcome, ConfigResult):
            store.save(tasks[index], outcome)
            print(_progress_line(index + 1, len(selected), outcome), flush=True)
        else:
            print(f"[{index + 1}/{len(selected)}] {selected[index].name}  FAILED: {outcome.message}", flush=True)

    from gdcore.sweeps import run_tasks

    if arguments.jobs is not None or arguments.scheduler is not None:
        print(f"running on {arguments.scheduler or f'a local Dask cluster of {arguments.jobs} worker process(es)'}")
    run_tasks(run_task, [tasks[index] for index in todo], jobs=arguments.jobs, scheduler=arguments.scheduler,
              chunk_size=1, on_result=progress)
    results = [outcome for outcome in outcomes if isinstance(outcome, ConfigResult)]
    crashed = [(config, outcome) for config, outcome in zip(selected, outcomes) if not isinstance(outcome, ConfigResult)]
    summary = summary_frame(results)
    print()
    print(format_table(summary))
    failures = [comparison for result in results for comparison in result.comparisons if comparison.failed]
    for comparison in failures:
        print()
        print(comparison.failure_message())
    for config, failure in crashed:  # a task that raised is reported with its configuration, never dropped
        print()
        print(f"{config.name} ({config!r}) raised:\n{failure.traceback}")
    elapsed = time.perf_counter() - start
    argv_line = ["python", "-m", "reference", *(sys.argv[1:] if argv is None else argv)]
    preamble = [f"gdcore numerics: {arguments.numerics}", machine, *verify.splitlines(), f"wall time: {elapsed:.1f} s"]
    output = write_report(results, arguments.output, argv=argv_line, preamble=preamble, plots=not arguments.no_plots)
    if verify_text:
        (output / "verify-tensorflow-profile.txt").write_text(verify_text + "\n")
    checked = int((~summary["status"].isin(["skipped", "info"])).sum())
    print()
    print(f"{len(failures)} of {checked} checked comparison(s) beyond tolerance; "
          f"{int((summary['status'] == 'known gap').sum())} known gap(s); "
          f"{int((summary['status'] == 'skipped').sum())} skipped" + (f"; {len(crashed)} configuration(s) raised"
                                                                         if crashed else "") +
          f". Report: {output}/ ({time.perf_counter() - start:.1f} s)")
    return 1 if failures or crashed else 0


if __name__ == "__main__":
    sys.exit(main())
