"""The compiled engine: the whole training loop (epochs, batches, forward, backward, update) in one Numba function.

Nothing here defines maths. Activations, losses and update rules are the
entries of the tables in :mod:`gdcore.activations`, :mod:`gdcore.losses` and
:mod:`gdcore.optimizers`, compiled as they are; the order of each reduction
is the numerics profile's ``*_loop`` function. This module only schedules
them over preallocated buffers, so that a step allocates nothing.

Dispatch is generated, never written by hand: an activation or loss id
reaches a branch chain built from its table (an id with no entry raises), the
optimizer's rule is chosen while typing by the type of its hyperparameter
tuple, and the numerics profile is a compile-time constant. The arguments are
the named tuples of :mod:`gdcore._contract`. Kernels are compiled on first
use and cached on disk (``cache=True``), so importing gdcore compiles nothing
and a notebook's second start loads them.
"""

import numpy as np
from numba import literally, njit, types
from numba.core import errors
from numba.extending import overload

from gdcore import activations, losses, optimizers
from gdcore._contract import (FAILURE_LOSS, FAILURE_UPDATE, FAILURE_VALIDATION, Batches, Epochs, Log, Network,
                              OptimizerState, Window)
from gdcore._dispatch import switch
from gdcore._dtype import cast
from gdcore.numerics import PROFILE_IDS, _plain, _tensorflow

_jit = njit(cache=True, error_model="numpy", nogil=True)
# Small step functions are inlined into their caller at Numba IR level: a call between
# separately compiled functions costs more than a 20-sample layer, and blocks vectorisation.
_inline = njit(cache=True, error_model="numpy", nogil=True, inline="always")
_overload = dict(prefer_literal=True, inline="always", jit_options={"cache": True, "error_model": "numpy"})


# --- profile dispatch -------------------------------------------------------------
#
# The profile reaches the compiled code as a compile-time constant: the entry points
# pass their profile id as a literal, and each reduction below is an overload that picks
# the profile's loop while typing. A run of the plain profile therefore never compiles
# the TensorFlow kernels, and vice versa.

_KERNELS_BY_ID = {profile_id: name.partition("/")[2] for name, profile_id in PROFILE_IDS.items()}


def _profile_module(profile):
    """The compiled kernels of the profile whose id is the literal ``profile``."""
    if not isinstance(profile, types.IntegerLiteral):
        raise errors.TypingError("the numerics profile must be a compile-time constant (use numba.literally)")
    if profile.literal_value not in _KERNELS_BY_ID:
        raise errors.TypingError(f"no numerics profile has id {profile.literal_value}")
    backend = _KERNELS_BY_ID[profile.literal_value]
    return _tensorflow.kernels(backend) if backend else _plain


def _takes_caches(profile) -> bool:
    """Whether the profile's products take the machine's cache sizes as a last argument."""
    return getattr(_profile_module(profile), "takes_caches", False)


def _dense(profile, caches, inputs, kernel, bias, out):
    """Compiled code only: the profile's ``dense_loop`` (product, then bias)."""


def _matmul_grad_input(profile, caches, delta, kernel, out):
    """Compiled code only: the profile's ``matmul_grad_input_loop``."""


def _matmul_grad_kernel(profile, caches, inputs, delta, out):
    """Compiled code only: the profile's ``matmul_grad_kernel_loop``."""


def _sum_vector(profile, values):
    """Compiled code only: the profile's ``sum_vector_loop``."""


def _sum_columns(profile, values, out):
    """Compiled code only: the profile's ``sum_columns_loop``."""


@overload(_dense, **_overload)
def _dense_numba(profile, caches, inputs, kernel, bias, out):
    loop = _profile_module(profile).dense_loop
    if _takes_caches(profile):
        return lambda profile, caches, inputs, kernel, bias, out: loop(inputs, kernel, bias, out, caches)
    return lambda profile, caches, inputs, kernel, bias, out: loop(inputs, kernel, bias, out)


@overload(_matmul_grad_input, **_overload)
def _matmul_grad_input_numba(profile, caches, delta, kernel, out):
    loop = _profile_module(profile).matmul_grad_input_loop
    if _takes_caches(profile):
        return lambda profile, caches, delta, kernel, out: loop(delta, kernel, out, caches)
    return lambda profile, caches, delta, kernel, out: loop(delta, kernel, out)


@overload(_matmul_grad_kernel, **_overload)
def _matmul_grad_kernel_numba(profile, caches, inputs, delta, out):
    loop = _profile_module(profile).matmul_grad_kernel_loop
    if _takes_caches(profile):
        return lambda profile, caches, inputs, delta, out: loop(inputs, delta, out, caches)
    return lambda profile, caches, inputs, delta, out: loop(inputs, delta, out)


@overload(_sum_vector, **_overload)
def _sum_vector_numba(profile, values):
    loop = _profile_module(profile).sum_vector_loop
    return lambda profile, values: loop(values)


@overload(_sum_columns, **_overload)
def _sum_columns_numba(profile, values, out):
    loop = _profile_module(profile).sum_columns_loop
    return lambda profile, values, out: loop(values, out)


# --- activations and losses: branch chains generated from their tables ---------------


def _activation_loops(profile, which: int):
    """Per activation, in id order: the profile's own loop if it has one, else the activation's (0 forward, 1 grad)."""
    overrides = _profile_module(profile).ACTIVATION_LOOPS
    return [overrides[a.name][which] if a.name in overrides else a.loops[which] for a in activations.ACTIVATIONS]


def _activate(profile, activation, z):
    """Compiled code only: z <- f(z) in place, the activation evaluated as the profile evaluates it."""


def _activation_grad(profile, activation, y, delta):
    """Compiled code only: delta <- dL/dz from delta = dL/dy and the layer's output y, in place."""


@overload(_activate, **_overload)
def _activate_numba(profile, activation, z):
    return switch("activate", _activation_loops(profile, 0), ["z"], "activation", leading=["profile"])


@overload(_activation_grad, **_overload)
def _activation_grad_numba(profile, activation, y, delta):
    return switch("activation_grad", _activation_loops(profile, 1), ["y", "delta"], "activation", leading=["profile"])


def _loss_pass_for(loss):
    """The compiled pass of ``loss`` over a batch: per-sample means (a row loss's values) and, optionally, dL/d(y_pred)."""
    value, grad, row = loss.value, loss.grad, loss.row
    if row is not None:
        def row_pass(y_true, y_pred, per_sample, delta, with_gradient):
            scale = cast(1, y_pred) / cast(y_pred.shape[0], y_pred)
            for b in range(y_pred.shape[0]):
                per_sample[b] = row(y_true[b], y_pred[b], delta[b], scale, with_gradient)

        row_pass.__name__ = row_pass.__qualname__ = f"{loss.name}_pass"
        return _inline(row_pass)

    def loss_pass(y_true, y_pred, per_sample, delta, with_gradient):
        rows, n_outputs = y_pred.shape
        scale = cast(1, y_pred) / cast(rows, y_pred) / cast(n_outputs, y_pred)
        for b in range(rows):
            acc = cast(0, y_pred)
            for j in range(n_outputs):
                term = value(y_true[b, j], y_pred[b, j])
                acc = term if j == 0 else acc + term
                if with_gradient:
                    delta[b, j] = grad(y_true[b, j], y_pred[b, j], scale)
            per_sample[b] = acc / cast(n_outputs, y_pred)

    loss_pass.__name__ = loss_pass.__qualname__ = f"{loss.name}_pass"
    return _inline(loss_pass)


_LOSS_PASSES = [_loss_pass_for(loss) for loss in losses.LOSSES]


def _loss_pass(loss, y_true, y_pred, per_sample, delta, with_gradient):
    """Compiled code only: the pass of loss ``loss`` (an id)."""


@overload(_loss_pass, inline="always", jit_options={"cache": True, "error_model": "numpy"})
def _loss_pass_numba(loss, y_true, y_pred, per_sample, delta, with_gradient):
    return switch("loss_pass", _LOSS_PASSES, ["y_true", "y_pred", "per_sample", "delta", "with_gradient"], "loss")


# --- views, made once per call: creating a view costs ~25 ns of reference counting ---


@_jit
def _parameter_views(params, layout):
    """Per layer, the kernel (n_in, n_out) and bias (n_out,) as views into the flat array."""
    kernels = [params[0:1].reshape((1, 1))]
    biases = [params[0:1]]
    kernels.clear()
    biases.clear()
    for layer in range(layout.shape[0]):
        row = layout[layer]
        kernels.append(params[row.kernel : row.kernel + row.n_in * row.n_out].reshape((row.n_in, row.n_out)))
        biases.append(params[row.bias : row.bias + row.n_out])
    return kernels, biases


@_jit
def _workspace(rows, n_features, layout, dtype_like):
    """Buffers for one batch of ``rows`` samples: inputs, targets, and per layer its output and dL/d(output)."""
    n_layers = layout.shape[0]
    inputs = np.empty((rows, n_features), dtype=dtype_like.dtype)
    targets = np.empty((rows, layout[n_layers - 1].n_out), dtype=dtype_like.dtype)
    outputs = [inputs]
    deltas = [inputs]
    outputs.clear()
    deltas.clear()
    for layer in range(n_layers):
        outputs.append(np.empty((rows, layout[layer].n_out), dtype=dtype_like.dtype))
        deltas.append(np.empty((rows, layout[layer].n_out), dtype=dtype_like.dtype))
    per_sample = np.empty(rows, dtype=dtype_like.dtype)
    return inputs, targets, outputs, deltas, per_sample


# --- one batch ----------------------------------------------------------------------


@_inline
def _forward(profile, caches, inputs, kernels, biases, layout, outputs):
    """Every layer's output for one batch, into ``outputs[layer]``; returns the last."""
    for layer in range(layout.shape[0]):
        _dense(profile, caches, inputs, kernels[layer], biases[layer], outputs[layer])
        _activate(profile, layout[layer].activation, outputs[layer])
        inputs = outputs[layer]
    return inputs


@_inline
def _batch_loss(profile, loss, y_true, y_pred, per_sample, delta, with_gradient):
    """Keras's batch loss sum(per-sample mean over outputs) / B.

    With ``with_gradient`` (a constant), the same pass also fills
    ``delta`` = dL/d(y_pred); training uses it only if the loss is finite.
    """
    _loss_pass(loss, y_true, y_pred, per_sample, delta, with_gradient)
    return _sum_vector(profile, per_sample) / cast(y_pred.shape[0], y_pred)


@_inline
def _backward(profile, caches, inputs, kernels, layout, outputs, deltas, kernel_grads, bias_grads):
    """Fill the gradients from ``deltas[-1]`` = dL/d(y_pred); ``deltas`` are overwritten."""
    for layer in range(layout.shape[0] - 1, -1, -1):
        delta = deltas[layer]
        _activation_grad(profile, layout[layer].activation, outputs[layer], delta)
        if layer > 0:
            _matmul_grad_kernel(profile, caches, outputs[layer - 1], delta, kernel_grads[layer])
        else:
            _matmul_grad_kernel(profile, caches, inputs, delta, kernel_grads[layer])
        _sum_columns(profile, delta, bias_grads[layer])
        if layer > 0:
            _matmul_grad_input(profile, caches, delta, kernels[layer], deltas[layer - 1])


# --- whole runs ----------------------------------------------------------------------


@_jit
def permutations(seeds, n):
    """One permutation of ``range(n)`` per entry of ``seeds`` (uint64), as an array (len(seeds), n).

    Fisher-Yates: position i swaps with ``i + floor(u_i * (n - i))``, where
    u_i in [0, 1) is the top 53 bits of the i-th output of a SplitMix64 stream
    started at the row's seed. The model draws one seed per epoch from its
    NumPy generator, so a seed fixes every epoch's order, and drawing epochs
    one at a time or many at once gives the same orders.
    """
    orders = np.empty((seeds.shape[0], n), dtype=np.int64)
    partner = np.empty(n, dtype=np.int64)
    for epoch in range(seeds.shape[0]):
        # SplitMix64's i-th output depends only on seed + (i + 1) * gamma: all draws in one vectorised pass.
        for i in range(n - 1):
            bits = _splitmix64_output(seeds[epoch] + np.uint64(i + 1) * np.uint64(0x9E3779B97F4A7C15))
            partner[i] = i + int(np.float64(bits >> np.uint64(11)) * _TWO_TO_MINUS_53 * (n - i))
        order = orders[epoch]
        for i in range(n):
            order[i] = i
        for i in range(n - 1):
            j = partner[i]
            order[i], order[j] = order[j], order[i]
    return orders


_TWO_TO_MINUS_53 = 2.0 ** -53


@_inline
def _splitmix64_output(z):
    """SplitMix64's output function (Steele, Lea and Flood 2014) of the state ``z`` (uint64)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@_inline
def _gather(x, y, order, start, inputs, targets):
    """The batch's rows, contiguous: inputs[b] <- x[order[start + b]], targets[b] <- y[order[start + b]]."""
    for b in range(inputs.shape[0]):
        row = order[start + b]
        for j in range(x.shape[1]):
            inputs[b, j] = x[row, j]
        for j in range(y.shape[1]):
            targets[b, j] = y[row, j]


@_inline
def _copy_flat(source, out):
    # An explicit loop: slice assignment would pull Numba's broadcasting machinery into the compile.
    for i in range(source.shape[0]):
        out[i] = source[i]


@_inline
def _copy_rows(source, start, out):
    for b in range(out.shape[0]):
        for j in range(source.shape[1]):
            out[b, j] = source[start + b, j]


@_jit
def _evaluate_loop(profile, caches, batches, network, loss):
    """Keras's ``evaluate``: batch-size-weighted mean of batch losses, accumulated in the model dtype."""
    literally(profile)
    x, y, batch_size = batches.x, batches.y, batches.batch_size
    layout = network.layout
    n = x.shape[0]
    kernels, biases = _parameter_views(network.params, layout)
    full = _workspace(min(batch_size, n), x.shape[1], layout, x)
    last = _workspace(n % batch_size if n % batch_size else batch_size, x.shape[1], layout, x)
    total = cast(0, x)
    count = cast(0, x)
    for start in range(0, n, batch_size):
        inputs, targets, outputs, deltas, per_sample = full if start + batch_size <= n else last
        _copy_rows(x, start, inputs)
        _copy_rows(y, start, targets)
        y_pred = _forward(profile, caches, inputs, kernels, biases, layout, outputs)
        batch = _batch_loss(profile, loss, targets, y_pred, per_sample, deltas[layout.shape[0] - 1], False)
        total = total + batch * cast(inputs.shape[0], x)
        count = count + cast(inputs.shape[0], x)
    return total / count


@_jit
def _predict_loop(profile, caches, batches, network):
    literally(profile)
    x, batch_size, layout = batches.x, batches.batch_size, network.layout
    n = x.shape[0]
    kernels, biases = _parameter_views(network.params, layout)
    result = np.empty((n, layout[layout.shape[0] - 1].n_out), dtype=x.dtype)
    full = _workspace(min(batch_size, n), x.shape[1], layout, x)
    last = _workspace(n % batch_size if n % batch_size else batch_size, x.shape[1], layout, x)
    for start in range(0, n, batch_size):
        inputs, _, outputs, _, _ = full if start + batch_size <= n else last
        _copy_rows(x, start, inputs)
        y_pred = _forward(profile, caches, inputs, kernels, biases, layout, outputs)
        for b in range(y_pred.shape[0]):
            for j in range(y_pred.shape[1]):
                result[start + b, j] = y_pred[b, j]
    return result


@_jit
def _fit_loop(profile, caches, epochs, network, loss, optimizer, log, window):
    """Train on ``epochs.orders`` within ``window`` (contract: :mod:`gdcore._contract`)."""
    literally(profile)
    x, y, orders, batch_size = epochs.x, epochs.y, epochs.orders, epochs.batch_size
    params, layout, hyper, slots, lanes = network.params, network.layout, optimizer.hyper, optimizer.slots, optimizer.lanes
    iterations = optimizer.iterations
    n = x.shape[0]
    grads = np.zeros_like(params)
    kernels, biases = _parameter_views(params, layout)
    kernel_grads, bias_grads = _parameter_views(grads, layout)
    full = _workspace(min(batch_size, n), x.shape[1], layout, x)
    last = _workspace(n % batch_size if n % batch_size else batch_size, x.shape[1], layout, x)
    n_full = n // batch_size
    n_batches = n_full + (1 if n % batch_size else 0)
    n_layers = layout.shape[0]
    steps = 0
    for epoch in range(orders.shape[0]):
        order = orders[epoch]
        first = window.start_batch if epoch == 0 else 0
        if first == 0:
            _copy_flat(params, window.saved_params)
            _copy_flat(slots.reshape(-1), window.saved_slots.reshape(-1))
            window.saved_iterations[0] = iterations
            total = cast(0, x)
            count = cast(0, x)
        else:
            total = window.running[0]
            count = window.running[1]
        for batch_index in range(first, n_batches):
            # The last batch may be partial: it has buffers of its own (one call site keeps the compile small).
            inputs, targets, outputs, deltas, per_sample = full if batch_index < n_full else last
            rows = cast(inputs.shape[0], x)
            _gather(x, y, order, batch_index * batch_size, inputs, targets)
            y_pred = _forward(profile, caches, inputs, kernels, biases, layout, outputs)
            batch = _batch_loss(profile, loss, targets, y_pred, per_sample, deltas[n_layers - 1], True)
            if not np.isfinite(batch):
                return _restore(window, params, slots, _FAILURE_LOSS), epoch, steps, batch_index
            _backward(profile, caches, inputs, kernels, layout, outputs, deltas, kernel_grads, bias_grads)
            optimizers.apply_update(hyper, params, grads, slots, iterations, lanes)
            if not (_all_finite(params) and _all_finite(slots.reshape(-1))):
                return _restore(window, params, slots, _FAILURE_UPDATE), epoch, steps, batch_index
            # Keras's loss metric: a batch-size-weighted running mean of the pre-update batch losses.
            total = total + batch * rows
            count = count + rows
            iterations += 1
            if steps < window.batch_loss.shape[0]:
                window.batch_loss[steps] = total / count
            steps += 1
            if steps == window.max_steps and batch_index + 1 < n_batches:
                window.running[0] = total
                window.running[1] = count
                return iterations, epoch, steps, -1
        log.loss[epoch] = total / count
        if epochs.val.x.shape[0] > 0:
            log.val_loss[epoch] = _evaluate_loop(profile, caches, epochs.val, network, loss)
            if not np.isfinite(log.val_loss[epoch]):
                return _restore(window, params, slots, _FAILURE_VALIDATION), epoch, steps, n_batches
        if steps >= window.max_steps:
            return iterations, epoch + 1, steps, -1
    return iterations, orders.shape[0], steps, -1


_FAILURE_LOSS, _FAILURE_UPDATE, _FAILURE_VALIDATION = FAILURE_LOSS, FAILURE_UPDATE, FAILURE_VALIDATION


@_inline
def _all_finite(values):
    bad = 0
    for i in range(values.shape[0]):
        bad += not np.isfinite(values[i])
    return bad == 0


@_inline
def _restore(window, params, slots, reason):
    """Put the parameters and optimizer state back to the epoch's start; the iteration count to return."""
    _copy_flat(window.saved_params, params)
    _copy_flat(window.saved_slots.reshape(-1), slots.reshape(-1))
    window.failure[0] = reason
    return window.saved_iterations[0]


# --- entry points, one compiled function per profile -----------------------------
# Each passes its profile id as a constant (a closure variable), so the profile is a
# literal while typing and no call from Python goes through ``literally``'s
# recompile-on-demand. Distinct names keep their on-disk cache entries apart.


def _entries(profile_id: int, tag: str):
    def fit(caches, epochs, network, loss, optimizer, log, window):
        return _fit_loop(profile_id, caches, epochs, network, loss, optimizer, log, window)

    def evaluate(caches, batches, network, loss):
        return _evaluate_loop(profile_id, caches, batches, network, loss)

    def predict(caches, batches, network):
        return _predict_loop(profile_id, caches, batches, network)

    compiled = []
    for function in (fit, evaluate, predict):
        function.__name__ = function.__qualname__ = f"_{function.__name__}_{tag}"
        compiled.append(_jit(function))
    return tuple(compiled)


_ENTRIES = {profile_id: _entries(profile_id, name.replace("/", "_").replace("-", "_"))
            for name, profile_id in PROFILE_IDS.items()}


def fit_loop(profile, epochs: Epochs, network: Network, loss: int, optimizer: OptimizerState, log: Log, window: Window,
             on_step=None):
    """Train on ``epochs.orders`` within ``window`` (:mod:`gdcore._contract`); ``profile``: a :class:`gdcore.numerics.Profile`."""
    if on_step is not None:
        raise ValueError("the compiled engine does not call on_step; use engine='numpy' to observe every step")
    return _ENTRIES[profile.id][0](profile.caches, epochs, network, loss, optimizer, log, window)


def evaluate_loop(profile, batches: Batches, network: Network, loss: int):
    """Keras's ``evaluate`` loss; see ``_evaluate_loop``."""
    return _ENTRIES[profile.id][1](profile.caches, batches, network, loss)


def predict_loop(profile, batches: Batches, network: Network):
    """Outputs in batches; see ``_predict_loop``."""
    return _ENTRIES[profile.id][2](profile.caches, batches, network)
