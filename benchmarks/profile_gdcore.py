"""Where gdcore's training time goes: the Python side of ``fit``, and inside the compiled loop.

Run alone (``python benchmarks/profile_gdcore.py [--quick]``) or through
``bench_training.py``, which appends these tables to its report.

It treats the engine as a black box with a documented contract, so that it
keeps working while the engine's internals change: ``Sequential.fit`` is run
once with its engine wrapped, to record the exact arguments it passes to
``_numba_engine.fit_loop``; then ``fit_loop`` is called directly with those
arguments, or with one of them changed:

* zero epochs: the cost of entering the compiled function;
* the hidden layers' activation set to linear in ``layout``: the difference is
  what the sigmoid costs, forward and backward;
* SGD instead of Adam: what Adam's update costs beyond SGD's;
* a four times larger batch: from the two times, the fixed cost of one
  training step and the cost of one sample, assuming
  ``time = samples * per_sample + steps * per_step``.

Each operation of a step is then timed alone, in a compiled loop, at the
workload's shapes (the plain profile's ``*_loop`` reductions and the shared
elementwise functions, applied as the engine applies them); their sum times
the number of steps, set against ``fit_loop``, leaves the cost of what lies
between them.

Two candidate fixes are timed against what gdcore does now, each checked
bit-identical on every run: the sigmoid over a batch buffer computed as one
flat, vectorisable pass with :math:`2^m` built from exponent bits, and the
kernel gradient with its two inner loops swapped.

Variants are timed in turns (round robin); a difference is the median over
rounds of the paired difference, so that drift of this shared machine
cancels; differences of a few per cent are within noise.
"""

import argparse
import inspect
import statistics
import time

import numpy as np
from numba import njit

_F32 = np.float32
# fit_loop's array arguments that it only reads; every other array is copied before each call.
_READ_ONLY = {"x", "y", "orders", "val_x", "val_y", "layout", "hyper"}


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

    def fit_loop(self, *args):
        self.calls.append(tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args))
        return self.engine.fit_loop(*args)


def _fit_loop_parameter_names(engine) -> list[str]:
    """fit_loop's parameter names, from whichever engine spells them out (``loss_id`` read as ``loss``)."""
    from gdcore import _numpy_engine

    for function in (engine.fit_loop, _numpy_engine.fit_loop):
        parameters = inspect.signature(getattr(function, "py_func", function)).parameters.values()
        if all(parameter.kind == parameter.POSITIONAL_OR_KEYWORD for parameter in parameters):
            return [parameter.name.removesuffix("_id") for parameter in parameters]
    raise TypeError("neither engine's fit_loop names its parameters")


class FitLoopCall:
    """One recorded ``fit_loop`` call, replayable with some arguments replaced."""

    def __init__(self, engine, args):
        self.function = engine.fit_loop
        self.names = _fit_loop_parameter_names(engine)
        if len(self.names) != len(args):
            raise TypeError(f"fit_loop was called with {len(args)} arguments, its contract names {len(self.names)}")
        self.arguments = dict(zip(self.names, args))

    def prepare(self, **changes):
        arguments = {**self.arguments, **changes}
        return [a.copy() if isinstance(a, np.ndarray) and name not in _READ_ONLY else a
                for name, a in ((name, arguments[name]) for name in self.names)]

    def run(self, args):
        return self.function(*args)



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
    return trainer.model, FitLoopCall(_numba_engine, recorder.calls[0])


def python_side(workload, budget: float = 1.0) -> tuple[list, FitLoopCall]:
    """Rows (what, median seconds, repetitions) splitting one ``Sequential.fit``, and the recorded call."""
    from peers import GdcoreTrainer

    trainer = GdcoreTrainer(workload)
    trainer.warm_up()
    model, call = record_fit(trainer)
    orders = call.arguments["orders"]
    timed = _round_robin({
        "fit": (lambda _: trainer.train(), trainer.reset),
        "prepare": (lambda _: (model._prepare_x(workload.x), model._prepare_y(workload.y, workload.n_samples)), _nothing),
        "shuffle": (lambda _: model._orders(workload.n_samples, workload.epochs, True), _nothing),
        "loop": (call.run, call.prepare),
        "enter": (call.run, lambda: call.prepare(orders=orders[:0])),
    }, budget)
    (fit, reps), (prepare, _), (shuffle, _), (loop, _), (enter, _) = (timed[name] for name in timed)
    rows = [
        ("`Sequential.fit`, whole call", fit, reps),
        ("input preparation (`_prepare_x`, `_prepare_y`)", prepare, reps),
        ("permutations (`Sequential._orders`)", shuffle, reps),
        ("compiled `fit_loop`, called directly with fit's arguments", loop, reps),
        ("  of which: entering `fit_loop` (same call, zero epochs)", enter, reps),
        ("rest of `fit` (validation, callbacks, History, optimizer objects)", fit - prepare - shuffle - loop, 0),
    ]
    return rows, call


# --- inside fit_loop ---------------------------------------------------------------------------------


def loop_split(workload, call: FitLoopCall, budget: float = 1.0) -> list:
    """Rows (what, median seconds, difference from fit's call, repetitions) of fit_loop variants."""
    import gdcore

    variants = {"base": (call.run, call.prepare)}
    layout = call.arguments["layout"]
    params = call.arguments["params"]
    if layout.shape[0] > 1:
        linear = layout.copy()
        linear[:-1, 2] = gdcore.activations.LINEAR.id
        variants["linear"] = (call.run, lambda: call.prepare(layout=linear))
    if call.arguments["optimizer"] == gdcore.optimizers.ADAM_ID:
        sgd = gdcore.optimizers.SGD(learning_rate=workload.learning_rate)
        hyper = sgd.hyperparameters(params.dtype)
        slots = np.zeros((1, params.size), dtype=params.dtype)
        variants["sgd"] = (call.run, lambda: call.prepare(optimizer=sgd.id, hyper=hyper, slots=slots))
    batch_size = call.arguments["batch_size"]
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
    applies it (the plain profile's ``*_loop`` reductions and the shared elementwise functions)."""
    from gdcore import activations, losses, optimizers
    from gdcore.numerics import _plain

    jit = njit(error_model="numpy", nogil=True)

    @jit
    def gather(args):
        source, order, out = args
        for b in range(out.shape[0]):
            row = order[b]
            for j in range(source.shape[1]):
                out[b, j] = source[row, j]

    @jit
    def matmul(args):
        _plain.matmul_loop(args[0], args[1], args[2])

    @jit
    def bias_sigmoid(args):
        z, bias = args
        for b in range(z.shape[0]):
            for j in range(z.shape[1]):
                z[b, j] = activations.sigmoid(z[b, j] + bias[j])

    @jit
    def bias_add(args):
        z, bias = args
        for b in range(z.shape[0]):
            for j in range(z.shape[1]):
                z[b, j] = z[b, j] + bias[j]

    @jit
    def batch_loss(args):
        y_true, y_pred, per_sample = args
        for b in range(y_pred.shape[0]):
            per_sample[b] = losses.squared_error(y_true[b, 0] - y_pred[b, 0])
        return _plain.sum_vector_loop(per_sample)

    @jit
    def output_grad(args):
        y_true, y_pred, delta = args
        scale = np.float32(1.0) / np.float32(y_pred.shape[0])
        for b in range(y_pred.shape[0]):
            delta[b, 0] = losses.squared_error_grad(y_true[b, 0] - y_pred[b, 0], scale)

    @jit
    def sigmoid_grad(args):
        y, delta = args
        for b in range(y.shape[0]):
            for j in range(y.shape[1]):
                delta[b, j] = activations.sigmoid_grad(y[b, j], delta[b, j])

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
    def adam(args):
        params, grads, slots, hyper = args
        alpha = optimizers.adam_step_size(hyper[0], hyper[1], hyper[2], np.float32(7))
        for i in range(params.shape[0]):
            params[i], slots[0, i], slots[1, i] = optimizers.adam_update(
                params[i], grads[i], slots[0, i], slots[1, i], alpha, hyper[3], hyper[4], hyper[5])

    @jit
    def sgd(args):
        params, grads, hyper = args
        for i in range(params.shape[0]):
            params[i] = optimizers.sgd_update(params[i], grads[i], hyper[0])

    return locals()


def _repeat_operation(operation):
    @njit(error_model="numpy", nogil=True)
    def repeat(args, count):
        for _ in range(count):
            operation(args)

    return repeat


def kernel_costs(workload, budget: float = 1.0) -> list:
    """Rows (operation, shape, ns per call, seconds per run = calls x steps) for one step of ``workload``.

    Every step is costed at the full batch size; the operations run on
    constant, realistic data in a compiled loop, so call overhead is excluded.
    """
    import gdcore

    operations = _step_operations()
    rng = np.random.default_rng(0)
    f32 = np.float32
    batch = min(workload.batch_size, workload.n_samples)
    widths = [1] + ([workload.hidden_units] if workload.hidden_units else []) + [1]
    n_params = sum(n_in * n_out + n_out for n_in, n_out in zip(widths, widths[1:]))
    plan = [("gather x and y rows", f"{batch}x1, twice", "gather",
             (workload.x, rng.permutation(workload.n_samples)[:batch], np.empty((batch, 1), f32)), 2)]
    activations_out = [rng.uniform(-1, 1, (batch, 1)).astype(f32)]
    for layer, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        hidden = layer < len(widths) - 2
        kernel = (rng.standard_normal((n_in, n_out)) * 0.3).astype(f32)
        out = np.empty((batch, n_out), f32)
        plan.append((f"forward matmul, layer {layer + 1}", f"({batch}x{n_in}) @ ({n_in}x{n_out})", "matmul",
                     (activations_out[-1], kernel, out), 1))
        bias = np.zeros(n_out, f32)
        if hidden:
            plan.append((f"bias + sigmoid, layer {layer + 1}", f"{batch}x{n_out}", "bias_sigmoid", (out.copy(), bias), 1))
            activations_out.append(rng.uniform(0.05, 0.95, (batch, n_out)).astype(f32))
        else:
            plan.append((f"bias add, layer {layer + 1}", f"{batch}x{n_out}", "bias_add", (out.copy(), bias), 1))
            activations_out.append(out)
    y_true = workload.y[:batch]
    y_pred = rng.standard_normal((batch, 1)).astype(f32)
    plan.append(("batch loss (squared errors + sum)", f"{batch}", "batch_loss", (y_true, y_pred, np.empty(batch, f32)), 1))
    plan.append(("output gradient", f"{batch}x1", "output_grad", (y_true, y_pred, np.empty((batch, 1), f32)), 1))
    for layer in range(len(widths) - 2, -1, -1):
        n_in, n_out = widths[layer], widths[layer + 1]
        delta = (rng.standard_normal((batch, n_out)) * 0.01).astype(f32)
        if layer < len(widths) - 2:
            plan.append((f"sigmoid gradient, layer {layer + 1}", f"{batch}x{n_out}", "sigmoid_grad",
                         (activations_out[layer + 1], delta.copy()), 1))
        plan.append((f"kernel gradient, layer {layer + 1}", f"({n_in}x{batch}) @ ({batch}x{n_out})", "matmul_grad_kernel",
                     (activations_out[layer], delta, np.empty((n_in, n_out), f32)), 1))
        plan.append((f"bias gradient, layer {layer + 1}", f"{batch}x{n_out} column sums", "sum_columns",
                     (delta, np.empty(n_out, f32)), 1))
        if layer > 0:
            kernel = (rng.standard_normal((n_in, n_out)) * 0.3).astype(f32)
            plan.append((f"input gradient, layer {layer + 1}", f"({batch}x{n_out}) @ ({n_out}x{n_in})", "matmul_grad_input",
                         (delta, kernel, np.empty((batch, n_in), f32)), 1))
    params = (rng.standard_normal(n_params) * 0.1).astype(f32)
    grads = (rng.standard_normal(n_params) * 0.01).astype(f32)
    if workload.optimizer == "adam":
        hyper = gdcore.optimizers.Adam(learning_rate=workload.learning_rate).hyperparameters(np.float32)
        plan.append(("Adam update", f"{n_params} parameters", "adam",
                     (params, grads, np.zeros((2, n_params), f32), hyper), 1))
    else:
        hyper = gdcore.optimizers.SGD(learning_rate=workload.learning_rate).hyperparameters(np.float32)
        plan.append(("SGD update", f"{n_params} parameters", "sgd", (params, grads, hyper), 1))

    steps = workload.epochs * -(-workload.n_samples // workload.batch_size)
    rows = []
    for label, shape, name, args, calls in plan:
        repeat = _repeat_operation(operations[name])
        count = max(1, 2_000_000 // (batch * max(widths)))
        seconds, _ = _timed(lambda _: repeat(args, count), budget / len(plan))
        per_call = seconds / count
        rows.append((label, shape, per_call * 1e9, per_call * calls * steps))
    return rows


# --- candidate fixes ---------------------------------------------------------------------------------

_FLT_MIN = _F32(np.finfo(np.float32).tiny)


@njit(error_model="numpy", nogil=True)
def _sigmoid_flat_exponent_bits(z, bias, exponent_bits):
    """sigmoid(z + bias) in place: bias in a 2-D pass, then the float32 Eigen logistic over the flat buffer.

    The polynomial is eigen's float32 packet logistic step for step; 2^m is
    the float whose exponent field is m + 127 (exact: m is in [-75, 12]),
    written by a first flat pass into an int32 buffer viewed as float32, so
    that both flat passes vectorise. An experiment: checked against
    ``gdcore.activations.sigmoid`` bit for bit on every run.
    """
    rows, cols = z.shape
    for b in range(rows):
        for j in range(cols):
            z[b, j] = z[b, j] + bias[j]
    flat = z.reshape(rows * cols)
    scale = exponent_bits[: rows * cols]
    scale_as_float = scale.view(np.float32)
    for i in range(flat.shape[0]):
        x = max(min(flat[i], _F32(16.6355324)), _F32(-104.0)) * _F32(0.5)
        m = np.floor(x * _F32(1.44269504088896341) + _F32(0.5))
        scale[i] = (np.int32(m) + np.int32(127)) << 23
    for i in range(flat.shape[0]):
        original = flat[i]
        x = max(min(original, _F32(16.6355324)), _F32(-104.0)) * _F32(0.5)
        m = np.floor(x * _F32(1.44269504088896341) + _F32(0.5))
        r = m * _F32(-0.693359375) + x
        r = m * _F32(2.12194440e-4) + r
        r2 = r * r
        p_even = r2 * _F32(4.1898667812347412109375e-2) + _F32(0.49999141693115234375)
        p_odd = r2 * _F32(8.33471305668354034423828125e-3) + _F32(0.16666877269744873046875)
        p = r * p_odd + p_even
        p = r2 * p + (r + _F32(1.0))
        e = p * scale_as_float[i]
        e = e * e
        e = e * (e >= _FLT_MIN)
        flat[i] = (e / (_F32(1.0) + e)) * (original >= _F32(-104.0))


@njit(error_model="numpy", nogil=True)
def _matmul_grad_kernel_units_outer(inputs, delta, out):
    """The plain profile's kernel gradient :math:`a^T\\delta` with the input index innermost.

    Each out[k, j] is still summed over b front to back (same bits as
    ``_plain.matmul_grad_kernel_loop``); only the two loops inside b are
    swapped, so that the innermost loop runs over k when the layer has one unit.
    """
    n_rows, n_in = inputs.shape
    n_out = delta.shape[1]
    for j in range(n_out):
        for k in range(n_in):
            out[k, j] = inputs[0, k] * delta[0, j]
    for b in range(1, n_rows):
        for j in range(n_out):
            factor = delta[b, j]
            for k in range(n_in):
                out[k, j] = out[k, j] + inputs[b, k] * factor


def _repeat3(kernel):
    """A compiled loop calling ``kernel(a, b, c)`` ``count`` times."""

    @njit(error_model="numpy", nogil=True)
    def repeat(a, b, c, count):
        for _ in range(count):
            kernel(a, b, c)

    return repeat


def matmul_grad_kernel_experiment(shapes, budget: float = 1.0) -> list[dict]:
    """Per (rows, n_in, n_out): ns per call of the plain kernel gradient and of the swapped loop order."""
    from gdcore.numerics import _plain

    rng = np.random.default_rng(0)
    results = []
    for rows, n_in, n_out in shapes:
        inputs = rng.standard_normal((rows, n_in)).astype(np.float32)
        delta = rng.standard_normal((rows, n_out)).astype(np.float32)
        expected, candidate = np.empty((n_in, n_out), np.float32), np.empty((n_in, n_out), np.float32)
        _plain.matmul_grad_kernel_loop(inputs, delta, expected)
        _matmul_grad_kernel_units_outer(inputs, delta, candidate)
        result = {"shape": (rows, n_in, n_out),
                  "identical": bool(np.array_equal(expected.view(np.int32), candidate.view(np.int32)))}
        count = max(1, 2_000_000 // (rows * n_in * n_out))
        for name, kernel in (("gdcore", _plain.matmul_grad_kernel_loop), ("swapped", _matmul_grad_kernel_units_outer)):
            repeat = _repeat3(kernel)
            seconds, _ = _timed(lambda _: repeat(inputs, delta, expected, count), budget / (2 * len(shapes)))
            result[name] = seconds / count * 1e9
        results.append(result)
    return results


def _gdcore_sigmoid_2d():
    from gdcore import activations

    @njit(error_model="numpy", nogil=True)
    def gdcore_sigmoid(z, bias, scratch):
        # The shape of gdcore's forward activation: elementwise over the (batch, units) buffer.
        rows, cols = z.shape
        for b in range(rows):
            for j in range(cols):
                z[b, j] = activations.sigmoid(z[b, j] + bias[j])

    return gdcore_sigmoid


def sigmoid_experiment(shapes, budget: float = 1.0) -> list[dict]:
    """Per shape: ns per element of gdcore's sigmoid and of the flat exponent-bits pass, and agreement."""
    gdcore_sigmoid = _gdcore_sigmoid_2d()
    rng = np.random.default_rng(0)
    probe = np.concatenate([rng.uniform(-120, 30, 200_000), rng.standard_normal(200_000) * 4,
                            [-104.5, -104.0, -103.9, -87.0, -88.5, 0.0, -0.0, 16.6355324, 17.0, 1e30, -1e30]])
    probe = probe.astype(np.float32).reshape(-1, 1)
    zero_bias = np.zeros(1, dtype=np.float32)
    expected, candidate = probe.copy(), probe.copy()
    gdcore_sigmoid(expected, zero_bias, np.empty(0, dtype=np.int32))
    _sigmoid_flat_exponent_bits(candidate, zero_bias, np.empty(candidate.size, dtype=np.int32))
    identical = bool(np.array_equal(expected.view(np.int32), candidate.view(np.int32)))
    results = []
    for rows, units in shapes:
        z0 = (rng.standard_normal((rows, units)) * 3).astype(np.float32)
        bias = (rng.standard_normal(units) * 0.1).astype(np.float32)
        scratch = np.empty(rows * units, dtype=np.int32)
        result = {"shape": (rows, units), "identical": identical, "probe_size": probe.size}
        for name, kernel in (("gdcore", gdcore_sigmoid), ("flat_bits", _sigmoid_flat_exponent_bits)):
            repeat = _repeat3(kernel)
            inner = max(1, 2_000_000 // (rows * units))
            # Values settle into (0.5, 0.75) after a few passes; both kernels are branch-free.
            seconds, _ = _timed(lambda _: repeat(z0.copy(), bias, scratch, inner), budget / (2 * len(shapes)))
            result[name] = seconds / (inner * rows * units) * 1e9
        results.append(result)
    return results


# --- report --------------------------------------------------------------------------------------------


def report(workloads, budget: float = 1.0) -> list[str]:
    """Markdown lines: for each workload the Python side and the loop split; then the experiments."""
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
    lines += ["#### Candidate fixes, measured", ""]
    shapes = sorted({(w.batch_size, w.hidden_units) for w in workloads if w.hidden_units})
    try:
        for result in sigmoid_experiment(shapes, budget):
            rows, units = result["shape"]
            lines.append(
                f"- Sigmoid of z + bias over a {rows}x{units} float32 buffer, in a compiled loop: "
                f"`gdcore.activations.sigmoid` elementwise in 2-D (as the engine applies it) {result['gdcore']:.2f} ns/element; "
                f"bias pass + flat pass with 2^m from exponent bits {result['flat_bits']:.2f} ns/element "
                f"({result['gdcore'] / result['flat_bits']:.1f}x); bit-identical on {result['probe_size']:,} probe values: "
                f"{'yes' if result['identical'] else 'NO'}.")
    except Exception as error:
        lines.append(f"- Sigmoid experiment unavailable: `{type(error).__name__}: {str(error).splitlines()[0][:200]}`")
    shapes = sorted({shape for w in workloads if w.hidden_units
                     for shape in ((w.batch_size, w.hidden_units, 1), (w.batch_size, 1, w.hidden_units))})
    try:
        for result in matmul_grad_kernel_experiment(shapes, budget):
            rows, n_in, n_out = result["shape"]
            lines.append(
                f"- Kernel gradient ({n_in}x{rows}) @ ({rows}x{n_out}), plain profile: `_plain.matmul_grad_kernel_loop` "
                f"{result['gdcore']:,.0f} ns/call; the two loops inside the batch loop swapped (k innermost) "
                f"{result['swapped']:,.0f} ns/call ({result['gdcore'] / result['swapped']:.1f}x); "
                f"bit-identical: {'yes' if result['identical'] else 'NO'}.")
    except Exception as error:
        lines.append(f"- Kernel-gradient experiment unavailable: `{type(error).__name__}: {str(error).splitlines()[0][:200]}`")
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
