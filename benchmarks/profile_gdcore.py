"""Where gdcore's training time goes: the Python side of ``fit``, and inside the compiled loop.

Run alone (``python benchmarks/profile_gdcore.py [--quick]``) or through
``bench_training.py``, which appends these tables to its report.

It treats the engine as a black box with a documented contract
(:mod:`gdcore._contract`), so that it keeps working while the engine's
internals change: ``Sequential.fit`` is run once with its engine wrapped, to
record the exact arguments it passes to ``_numba_engine.fit_loop``; then
``fit_loop`` is called directly with those arguments, or with one of them changed:

* zero epochs: the cost of entering the compiled function;
* the hidden layers' activation set to linear in ``layout``: the difference is
  what the sigmoid costs, forward and backward;
* SGD instead of Adam: what Adam's update costs beyond SGD's;
* a four times larger batch: from the two times, the fixed cost of one
  training step and the cost of one sample, assuming
  ``time = samples * per_sample + steps * per_step``.

Each operation of a step is then timed alone, in a compiled loop, at the
workload's shapes, applied as the engine applies it and by the functions it
calls: the engine's gather of a batch's x and y rows; per layer the plain
profile's ``dense_loop`` (product, then bias) and, for hidden layers,
``sigmoid_loop``; the batch loss and the output gradient in one pass; per
layer backwards ``sigmoid_grad_loop``, the kernel, bias and input gradients;
the update. Their sum times the number of steps, set against ``fit_loop``,
leaves the cost of what lies between them. The engine's ``_gather`` and
``_batch_loss`` are the two private names of the engine this table uses.

Variants are timed in turns (round robin); a difference is the median over
rounds of the paired difference, so that drift of this shared machine
cancels; differences of a few per cent are within noise.
"""

import argparse
import statistics
import time

import numpy as np
from numba import njit


def format_seconds(seconds: float) -> str:
    magnitude = abs(seconds)
    if magnitude >= 1:
        return f"{seconds:.3g} s"
    if magnitude >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def _reps_for(seconds: float, budget: float) -> int:
    return int(min(101, max(5, budget / max(seconds, 1e-9))))


def _nothing():
    return None


def _once(call, prepare) -> float:
    state = prepare()
    start = time.perf_counter()
    call(state)
    return time.perf_counter() - start


def _timed(call, budget: float, prepare=_nothing) -> tuple[float, int]:
    """Median seconds of ``call(prepare())`` (``prepare`` untimed) and the number of repetitions."""
    return _round_robin({"only": (call, prepare)}, budget)["only"]


def _round_robin(variants: dict, budget: float) -> dict:
    """{name: (median seconds, runs)} for {name: (call, prepare)}, timed in turns so drift hits all alike."""
    times = _round_robin_times(variants, budget)
    return {name: (statistics.median(values), len(values)) for name, values in times.items()}


def _round_robin_times(variants: dict, budget: float) -> dict:
    """{name: [seconds per round]}: in each round every variant runs once, in turn."""
    for call, prepare in variants.values():
        _once(call, prepare)
    first = sum(_once(call, prepare) for call, prepare in variants.values())
    reps = _reps_for(first, budget)
    times = {name: [] for name in variants}
    for _ in range(reps):
        for name, (call, prepare) in variants.items():
            times[name].append(_once(call, prepare))
    return times


def _paired_difference(times: dict, name: str, base: str = "base") -> float:
    """Median over rounds of (base - variant): each pair ran back to back, so slow drift cancels."""
    return statistics.median(b - v for b, v in zip(times[base], times[name]))


# --- the Python side of Sequential.fit ----------------------------------------------------------


class _RecordingEngine:
    """Stands in for the engine module during one ``fit``: records fit_loop's arguments, then runs it."""

    def __init__(self, engine):
        self.engine = engine
        self.calls = []

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def fit_loop(self, profile, *arguments, **options):
        self.calls.append(FitLoopCall(self.engine, profile, *(_copied(argument) for argument in arguments)))
        return self.engine.fit_loop(profile, *arguments, **options)


def _copied(bundle):
    """A named tuple of the contract with its arrays copied, nested tuples included (fit_loop writes to some)."""
    if isinstance(bundle, np.ndarray):
        return bundle.copy()
    if isinstance(bundle, tuple) and hasattr(bundle, "_fields"):
        return bundle._replace(**{name: _copied(value) for name, value in bundle._asdict().items()
                                  if isinstance(value, (np.ndarray, tuple))})
    return bundle


class FitLoopCall:
    """One recorded ``fit_loop(profile, epochs, network, loss, metrics, optimizer, log, window)`` call, replayable.

    ``prepare(**changes)`` gives fresh arguments: ``orders``/``batch_size`` change
    the ``Epochs``, ``layout`` the ``Network``, ``optimizer`` replaces the
    ``OptimizerState``; every array the loop writes to is a copy, and the
    window runs every step of the orders from the first batch.
    """

    def __init__(self, engine, profile, epochs, network, loss, metrics, optimizer, log, window):
        self.function = engine.fit_loop
        self.profile, self.epochs, self.network, self.loss, self.metrics = profile, epochs, network, loss, metrics
        self.optimizer, self.log, self.window = optimizer, log, window

    def prepare(self, orders=None, batch_size=None, layout=None, optimizer=None):
        epochs = self.epochs._replace(**{k: v for k, v in (("orders", orders), ("batch_size", batch_size)) if v is not None})
        network = _copied(self.network)
        if layout is not None:
            network = network._replace(layout=layout)
        count = len(epochs.orders)
        log = self.log._replace(**{name: np.zeros((count, *value.shape[1:]), value.dtype)
                                   for name, value in self.log._asdict().items()})
        window = _copied(self.window)._replace(start_batch=0, max_steps=1 << 62)
        return (self.profile, epochs, network, self.loss, self.metrics, _copied(optimizer or self.optimizer), log,
                window)

    def run(self, args):
        return self.function(*args)


def _takes_arguments():
    """A compiled function that takes fit_loop's compiled entry's arguments and does nothing with them.

    Timed as the engine passes them: converted to plain tuples (``plain_fit_arguments``), then passed.
    """
    from gdcore._numba_engine import plain_fit_arguments

    @njit
    def takes(caches, epochs, network, loss, metrics, optimizer, log, window):
        return 0

    return lambda args: takes(*plain_fit_arguments(*args))


def record_fit(trainer):
    """(the model after one ``fit``, the single ``FitLoopCall`` that fit made)."""
    from gdcore import _numba_engine

    trainer.reset()
    recorder = _RecordingEngine(_numba_engine)
    trainer.model._engine = lambda: recorder
    trainer.train()
    del trainer.model._engine
    if len(recorder.calls) != 1:
        raise RuntimeError(f"fit called fit_loop {len(recorder.calls)} times; the profile expects one call")
    return trainer.model, recorder.calls[0]


def python_side(workload, budget: float = 1.0) -> tuple[list, FitLoopCall]:
    """Rows (what, median seconds, repetitions) splitting one ``Sequential.fit``, and the recorded call."""
    from peers import GdcoreTrainer

    trainer = GdcoreTrainer(workload)
    trainer.warm_up()
    model, call = record_fit(trainer)
    orders = call.epochs.orders
    takes = _takes_arguments()
    takes(call.prepare(orders=orders[:0]))  # compiled before timing
    timed = _round_robin({
        "fit": (lambda _: trainer.train(), trainer.reset),
        "prepare": (lambda _: (model._prepare_x(workload.x), model._prepare_y(workload.y, workload.n_samples)), _nothing),
        "shuffle": (lambda _: model._orders(workload.n_samples, workload.epochs, True), _nothing),
        "loop": (call.run, call.prepare),
        "enter": (call.run, lambda: call.prepare(orders=orders[:0])),
        "arguments": (takes, lambda: call.prepare(orders=orders[:0])),
    }, budget)
    (fit, reps), (prepare, _), (shuffle, _), (loop, _), (enter, _), (arguments, _) = (timed[name] for name in timed)
    rows = [
        ("`Sequential.fit`, whole call", fit, reps),
        ("input preparation (`_prepare_x`, `_prepare_y`)", prepare, reps),
        ("permutations (`Sequential._orders`)", shuffle, reps),
        ("compiled `fit_loop`, called directly with fit's arguments", loop, reps),
        ("  of which: entering `fit_loop` (same call, zero epochs)", enter, reps),
        ("    of which: passing its arguments (as plain tuples, to a compiled function doing nothing)", arguments,
         reps),
        ("rest of `fit` (validation, callbacks, History, optimizer objects)", fit - prepare - shuffle - loop, 0),
    ]
    return rows, call


# --- inside fit_loop ---------------------------------------------------------------------------------


def loop_split(workload, call: FitLoopCall, budget: float = 1.0) -> list:
    """Rows (what, median seconds, difference from fit's call, repetitions) of fit_loop variants."""
    import gdcore

    variants = {"base": (call.run, call.prepare)}
    layout = call.network.layout
    params = call.network.params
    if layout.shape[0] > 1:
        linear = layout.copy()
        linear.activation[:-1] = gdcore.activations.LINEAR.id
        variants["linear"] = (call.run, lambda: call.prepare(layout=linear))
    if gdcore.optimizers.rule_of(call.optimizer.hyper) is gdcore.optimizers.ADAM_RULE:
        sgd = gdcore.optimizers.SGD(learning_rate=workload.learning_rate)
        state = call.optimizer._replace(hyper=gdcore.optimizers.packed(sgd.hyperparameters(params.dtype)),
                                        slots=np.zeros((1, params.size), dtype=params.dtype))
        variants["sgd"] = (call.run, lambda: call.prepare(optimizer=state))
    batch_size = call.epochs.batch_size
    larger = min(4 * batch_size, workload.n_samples)
    if larger > batch_size:
        variants["larger"] = (call.run, lambda: call.prepare(batch_size=larger))
    times = _round_robin_times(variants, budget)
    base, reps = statistics.median(times["base"]), len(times["base"])
    rows = [("`fit_loop` as `fit` calls it", base, None, reps)]
    if "linear" in times:
        rows.append(("hidden activations linear instead of sigmoid (difference: sigmoid, forward + backward)",
                     statistics.median(times["linear"]), _paired_difference(times, "linear"), reps))
    if "sgd" in times:
        rows.append(("SGD instead of Adam (difference: Adam's extra update work)",
                     statistics.median(times["sgd"]), _paired_difference(times, "sgd"), reps))
    if "larger" in times:
        saved = _paired_difference(times, "larger")
        rows.append((f"batch {larger} instead of {batch_size}", statistics.median(times["larger"]), saved, reps))
        samples = workload.n_samples * workload.epochs
        steps_small = workload.epochs * -(-workload.n_samples // batch_size)
        steps_large = workload.epochs * -(-workload.n_samples // larger)
        per_step = saved / (steps_small - steps_large)
        per_sample = (base - steps_small * per_step) / samples
        rows.append((f"=> fixed cost per step ({steps_small:,} steps)", per_step, steps_small * per_step, 0))
        rows.append((f"=> cost per sample ({samples:,} sample visits)", per_sample, samples * per_sample, 0))
    return rows


# --- cost of each kernel of a step ------------------------------------------------------------------


def _step_operations():
    """{name: compiled function(args)}: the operations of one training step, each applied as the engine
    applies it, by the functions the engine calls (the engine's gather and loss pass, the plain
    profile's ``*_loop`` functions, the update rules of :mod:`gdcore.optimizers`)."""
    from gdcore import _numba_engine, activations, optimizers
    from gdcore.numerics import _plain

    jit = njit(error_model="numpy", nogil=True)
    sigmoid_loop, sigmoid_grad_loop = activations.SIGMOID.loops

    @jit
    def gather(args):
        x, y, sample_weight, order, start, inputs, targets, weights = args
        _numba_engine._gather(x, y, sample_weight, order, start, inputs, targets, weights)

    @jit
    def dense(args):
        _plain.dense_loop(args[0], args[1], args[2], args[3])

    @jit
    def sigmoid(args):
        sigmoid_loop(args[0])

    @jit
    def batch_loss_and_output_grad(args):
        # The engine's own pass (plain profile 0, the workload's loss rule): per-sample
        # losses, their sum and dL/d(y_pred). Stored, not returned, so that the compiler
        # cannot drop the sum as unused.
        rule, y_true, y_pred, weights, per_sample, delta, loss = args
        loss[0] = _numba_engine._batch_loss(0, rule, y_true, y_pred, weights, per_sample, delta, True)

    @jit
    def sigmoid_grad(args):
        sigmoid_grad_loop(args[0], args[1])

    @jit
    def matmul_grad_kernel(args):
        _plain.matmul_grad_kernel_loop(args[0], args[1], args[2])

    @jit
    def sum_columns(args):
        _plain.sum_columns_loop(args[0], args[1])

    @jit
    def matmul_grad_input(args):
        _plain.matmul_grad_input_loop(args[0], args[1], args[2])

    @jit
    def update(args):
        # The engine's own call: the rule's compiled loop over the parameters, at update t = 7.
        params, grads, slots, hyper, lanes, options = args
        optimizers.apply_update(hyper, params, grads, slots, 6, lanes, options)

    return locals()


def _repeat_operation(operation):
    @njit(error_model="numpy", nogil=True)
    def repeat(args, count):
        for _ in range(count):
            operation(args)

    return repeat


# y (1 - y) = -1 for y = the golden ratio and for 1 - it (see kernel_costs).
_GOLDEN_RATIO = (1 + 5 ** 0.5) / 2


def kernel_costs(workload, budget: float = 1.0) -> list:
    """Rows (operation, shape, ns per call, seconds per run = ns per call x steps) for one step of ``workload``.

    Every step is costed at the full batch size; the operations run on
    constant, realistic data in a compiled loop, so call overhead is excluded.
    The loop applies each operation to the same arrays over and over, so an
    operation that works in place gets data on which that is harmless.
    """
    import gdcore
    from gdcore._contract import LossRule
    from gdcore.numerics import _plain

    operations = _step_operations()
    rng = np.random.default_rng(0)
    f32 = np.float32
    batch = min(workload.batch_size, workload.n_samples)
    widths = [1] + ([workload.hidden_units] if workload.hidden_units else []) + [1]
    n_params = sum(n_in * n_out + n_out for n_in, n_out in zip(widths, widths[1:]))
    plan = [("gather x and y rows (one loop)", f"{batch} rows of x and of y", "gather",
             (workload.x, workload.y, np.ones(workload.n_samples, f32), rng.permutation(workload.n_samples), 0,
              np.empty((batch, workload.x.shape[1]), f32), np.empty((batch, workload.y.shape[1]), f32),
              np.empty(batch, f32)))]
    layer_inputs = [rng.uniform(-1, 1, (batch, 1)).astype(f32)]
    for layer, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        kernel = (rng.standard_normal((n_in, n_out)) * 0.3).astype(f32)
        bias = (rng.standard_normal(n_out) * 0.1).astype(f32)
        z = np.empty((batch, n_out), f32)
        plan.append((f"dense (product + bias), layer {layer + 1}", f"({batch}x{n_in}) @ ({n_in}x{n_out}) + bias",
                     "dense", (layer_inputs[-1], kernel, bias, z)))
        if layer < len(widths) - 2:
            _plain.dense_loop(layer_inputs[-1], kernel, bias, z)
            # sigmoid_loop works in place: from the second call on it is applied to values in
            # (0, 1), which it maps into (0.5, 0.74), so they stay normal numbers. The kernel is
            # branch-free, so its speed depends on nothing else.
            plan.append((f"sigmoid, layer {layer + 1}", f"{batch}x{n_out}", "sigmoid", (z.copy(),)))
            gdcore.activations.SIGMOID.loops[0](z)
            layer_inputs.append(z)
    y_true = workload.y[:batch]
    y_pred = rng.standard_normal((batch, 1)).astype(f32)
    plan.append(("batch loss and output gradient", f"{batch}x1", "batch_loss_and_output_grad",
                 (LossRule(gdcore.losses.get("mse").id, gdcore.losses.SUM_OVER_BATCH_SIZE), y_true, y_pred,
                  np.ones(batch, f32), np.empty(batch, f32), np.empty((batch, 1), f32), np.empty(1, f32))))
    for layer in range(len(widths) - 2, -1, -1):
        n_in, n_out = widths[layer], widths[layer + 1]
        delta = (rng.standard_normal((batch, n_out)) * 0.01).astype(f32)
        if layer < len(widths) - 2:
            # sigmoid_grad_loop overwrites delta with delta * y (1 - y). With y in (0, 1) the
            # factor is at most 1/4, and repeated calls would shrink delta through denormals
            # (slow) to zero within about 60 calls; y (1 - y) = -1 for these y, so delta only
            # flips sign and stays normal. The kernel is branch-free, as above.
            golden = np.where(rng.random((batch, n_out)) < 0.5, _GOLDEN_RATIO, 1 - _GOLDEN_RATIO).astype(f32)
            plan.append((f"sigmoid gradient, layer {layer + 1}", f"{batch}x{n_out}", "sigmoid_grad",
                         (golden, delta.copy())))
        plan.append((f"kernel gradient, layer {layer + 1}", f"({n_in}x{batch}) @ ({batch}x{n_out})", "matmul_grad_kernel",
                     (layer_inputs[layer], delta, np.empty((n_in, n_out), f32))))
        plan.append((f"bias gradient, layer {layer + 1}", f"{batch}x{n_out} column sums", "sum_columns",
                     (delta, np.empty(n_out, f32))))
        if layer > 0:
            kernel = (rng.standard_normal((n_in, n_out)) * 0.3).astype(f32)
            plan.append((f"input gradient, layer {layer + 1}", f"({batch}x{n_out}) @ ({n_out}x{n_in})", "matmul_grad_input",
                         (delta, kernel, np.empty((batch, n_in), f32))))
    tensors, start = [], 0
    for n_in, n_out in zip(widths, widths[1:]):
        tensors += [(start, start + n_in * n_out), (start + n_in * n_out, start + n_in * n_out + n_out)]
        start += n_in * n_out + n_out
    tensors = np.asarray(tensors, dtype=np.int64)
    params = (rng.standard_normal(n_params) * 0.1).astype(f32)
    grads = (rng.standard_normal(n_params) * 0.01).astype(f32)
    optimizer = gdcore.optimizers.OPTIMIZERS[workload.optimizer](learning_rate=workload.learning_rate)
    plan.append((f"{type(optimizer).__name__} update", f"{n_params} parameters", "update",
                 (params, grads, np.zeros((len(optimizer.rule.slots), n_params), f32),
                  gdcore.optimizers.packed(optimizer.hyperparameters(np.float32)), np.zeros(n_params, np.int8),
                  optimizer.options(np.float32, 0, tensors, False))))

    steps = workload.epochs * -(-workload.n_samples // workload.batch_size)
    rows = []
    for label, shape, name, args in plan:
        repeat = _repeat_operation(operations[name])
        count = max(1, 2_000_000 // (batch * max(widths)))
        seconds, _ = _timed(lambda _: repeat(args, count), budget / len(plan))
        per_call = seconds / count
        rows.append((label, shape, per_call * 1e9, per_call * steps))
    return rows


# --- report --------------------------------------------------------------------------------------------


def report(workloads, budget: float = 1.0) -> list[str]:
    """Markdown lines: for each workload the Python side, the loop split and the cost of each operation."""
    lines = ["Medians of runs made in turns. A difference is the median over rounds of (fit's call - variant), "
             "each pair run back to back; on this shared machine, differences below about 5 % of the total are noise, "
             "and so is the per-step/per-sample split when the larger batch barely changes the time.", ""]
    for workload in workloads:
        lines += [f"#### {workload.name} ({workload.n_samples:,} samples, batch {workload.batch_size}, "
                  f"{workload.epochs} epoch{'s' if workload.epochs > 1 else ''})", ""]
        try:
            rows, call = python_side(workload, budget)
            total = rows[0][1]
            lines += ["| piece of `Sequential.fit` | median | share of fit | runs |", "|---|---:|---:|---:|"]
            lines += [f"| {what} | {format_seconds(s)} | {100 * s / total:.0f} % | {r or '–'} |" for what, s, r in rows]
            lines.append("")
            rows = loop_split(workload, call, budget)
            lines += ["| `fit_loop` variant | median | difference / total | share of `fit_loop` | runs |",
                      "|---|---:|---:|---:|---:|"]
            for what, seconds, difference, reps in rows:
                if difference is None:
                    lines.append(f"| {what} | {format_seconds(seconds)} | | 100 % | {reps} |")
                else:
                    lines.append(f"| {what} | {format_seconds(seconds)} | {format_seconds(difference)} | "
                                 f"{100 * difference / rows[0][1]:.0f} % | {reps or '–'} |")
            loop_seconds = rows[0][1]
            lines.append("")
            rows = kernel_costs(workload, budget=budget)
            kernels = sum(row[3] for row in rows)
            lines += [f"| one step's operations, alone in a compiled loop (plain profile) | shape | per call | "
                      f"x {workload.epochs * -(-workload.n_samples // workload.batch_size):,} steps | share of `fit_loop` |",
                      "|---|---|---:|---:|---:|"]
            lines += [f"| {label} | {shape} | {nanoseconds:,.0f} ns | {format_seconds(seconds)} | "
                      f"{100 * seconds / loop_seconds:.0f} % |" for label, shape, nanoseconds, seconds in rows]
            lines.append(f"| **sum of the operations** | | | {format_seconds(kernels)} | {100 * kernels / loop_seconds:.0f} % |")
            lines.append(f"| **`fit_loop` minus the sum: calls between them, views, loop control, epoch bookkeeping** "
                         f"| | | {format_seconds(loop_seconds - kernels)} | {100 * (loop_seconds - kernels) / loop_seconds:.0f} % |")
        except Exception as error:  # the engine is edited concurrently; report rather than fail
            lines.append(f"Unavailable: `{type(error).__name__}: {str(error).splitlines()[0][:200]}`")
        lines.append("")
    return lines


def main(argv=None):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import gdcore

    from peers import make_workload

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1e5 samples instead of 1e6 and shorter timing budgets")
    args = parser.parse_args(argv)
    seed = gdcore.datasets.make_regression_dataset(100, noise=1.25, random_state=42)
    n_large = 100_000 if args.quick else 1_000_000
    large = gdcore.datasets.make_regression_dataset(n_large, noise=1.25, random_state=42)
    workloads = [
        make_workload("linear neuron, SGD 0.01", seed["X"], seed["y"], None, "sgd", 0.01, 20, 25),
        make_workload("1-8-1 sigmoid, Adam 0.1", seed["X"], seed["y"], 8, "adam", 0.1, 20, 25),
        make_workload("1-8-1, batch 32", large["X"], large["y"], 8, "adam", 0.1, 32, 1),
        make_workload("1-64-1, batch 1024", large["X"], large["y"], 64, "adam", 0.1, 1024, 1),
    ]
    print("\n".join(report(workloads, budget=0.3 if args.quick else 1.0)))


if __name__ == "__main__":
    main()
