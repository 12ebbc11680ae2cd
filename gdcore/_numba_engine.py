"""The compiled engine: the whole training loop (epochs, batches, forward, backward, update) in one Numba function.

Nothing here defines maths. Activations, losses and update rules are the
functions of :mod:`gdcore.activations`, :mod:`gdcore.losses` and
:mod:`gdcore.optimizers`, compiled as they are; the order of each reduction
is the numerics profile's ``*_loop`` function. This module only schedules
them over preallocated buffers, so that a step allocates nothing.

Parameters live in one flat array; ``layout[l] = (n_in, n_out, activation_id,
kernel_offset, bias_offset)`` locates layer ``l``'s kernel (row-major, shape
(n_in, n_out)) and bias inside it. Kernels are compiled on first use and
cached on disk (``cache=True``), so importing gdcore compiles nothing and a
notebook's second start loads them.
"""

import numpy as np
from numba import literally, njit, types
from numba.core import errors
from numba.extending import overload

from gdcore import activations, losses, optimizers
from gdcore._dtype import cast
from gdcore.numerics import PROFILE_IDS, _plain, _tensorflow

_jit = njit(cache=True, error_model="numpy", nogil=True)
# Small step functions are inlined into their caller at Numba IR level: a call between
# separately compiled functions costs more than a 20-sample layer, and blocks vectorisation.
_inline = njit(cache=True, error_model="numpy", nogil=True, inline="always")

_relu = _jit(activations.relu)
_relu_grad = _jit(activations.relu_grad)
_squared_error = _jit(losses.squared_error)
_squared_error_grad = _jit(losses.squared_error_grad)
_absolute_error = _jit(losses.absolute_error)
_absolute_error_grad = _jit(losses.absolute_error_grad)
_sgd_update = _jit(optimizers.sgd_update)
_sgd_momentum_update = _jit(optimizers.sgd_momentum_update)
_adam_step_size = _jit(optimizers.adam_step_size)
_adam_update = _jit(optimizers.adam_update)


# --- profile dispatch -------------------------------------------------------------
#
# The profile reaches the compiled code as a compile-time constant: the entry points
# call ``literally(profile)``, and each reduction below is an overload that picks the
# profile's loop while typing. A run of the plain profile therefore never compiles
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


def _with_caches(profile, loop):
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


_overload = dict(prefer_literal=True, inline="always", jit_options={"cache": True, "error_model": "numpy"})


@overload(_dense, **_overload)
def _dense_numba(profile, caches, inputs, kernel, bias, out):
    loop = _profile_module(profile).dense_loop
    if _with_caches(profile, loop):
        return lambda profile, caches, inputs, kernel, bias, out: loop(inputs, kernel, bias, out, caches)
    return lambda profile, caches, inputs, kernel, bias, out: loop(inputs, kernel, bias, out)


@overload(_matmul_grad_input, **_overload)
def _matmul_grad_input_numba(profile, caches, delta, kernel, out):
    loop = _profile_module(profile).matmul_grad_input_loop
    if _with_caches(profile, loop):
        return lambda profile, caches, delta, kernel, out: loop(delta, kernel, out, caches)
    return lambda profile, caches, delta, kernel, out: loop(delta, kernel, out)


@overload(_matmul_grad_kernel, **_overload)
def _matmul_grad_kernel_numba(profile, caches, inputs, delta, out):
    loop = _profile_module(profile).matmul_grad_kernel_loop
    if _with_caches(profile, loop):
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


# --- one batch ----------------------------------------------------------------------


def _sigmoid_loop(profile, z):
    """Compiled code only: the profile's ``sigmoid_loop`` (in place)."""


def _sigmoid_grad_loop(profile, y, delta):
    """Compiled code only: the profile's ``sigmoid_grad_loop`` (``delta`` in place)."""


def _tanh_loop(profile, z):
    """Compiled code only: the profile's ``tanh_loop`` (in place)."""


def _tanh_grad_loop(profile, y, delta):
    """Compiled code only: the profile's ``tanh_grad_loop`` (``delta`` in place)."""


@overload(_sigmoid_loop, **_overload)
def _sigmoid_loop_numba(profile, z):
    loop = _profile_module(profile).sigmoid_loop
    return lambda profile, z: loop(z)


@overload(_sigmoid_grad_loop, **_overload)
def _sigmoid_grad_loop_numba(profile, y, delta):
    loop = _profile_module(profile).sigmoid_grad_loop
    return lambda profile, y, delta: loop(y, delta)


@overload(_tanh_loop, **_overload)
def _tanh_loop_numba(profile, z):
    loop = _profile_module(profile).tanh_loop
    return lambda profile, z: loop(z)


@overload(_tanh_grad_loop, **_overload)
def _tanh_grad_loop_numba(profile, y, delta):
    loop = _profile_module(profile).tanh_grad_loop
    return lambda profile, y, delta: loop(y, delta)


@_inline
def _activate(profile, activation, z):
    """z <- f(z) in place, the activation evaluated as the profile evaluates it."""
    if activation == 1:
        _sigmoid_loop(profile, z)
    elif activation == 2:
        _tanh_loop(profile, z)
    elif activation == 3:
        for b in range(z.shape[0]):
            for j in range(z.shape[1]):
                z[b, j] = _relu(z[b, j])


@_inline
def _activation_grad(profile, activation, y, delta):
    """delta <- dL/dz from delta = dL/dy and the layer's output y, in place."""
    if activation == 1:
        _sigmoid_grad_loop(profile, y, delta)
    elif activation == 2:
        _tanh_grad_loop(profile, y, delta)
    elif activation == 3:
        for b in range(y.shape[0]):
            for j in range(y.shape[1]):
                delta[b, j] = _relu_grad(y[b, j], delta[b, j])


# --- views, made once per call: creating a view costs ~25 ns of reference counting ---


@_jit
def _parameter_views(params, layout):
    """Per layer, the kernel (n_in, n_out) and bias (n_out,) as views into the flat array."""
    kernels = [params[0:1].reshape((1, 1))]
    biases = [params[0:1]]
    kernels.clear()
    biases.clear()
    for layer in range(layout.shape[0]):
        n_in, n_out, _, kernel_offset, bias_offset = layout[layer]
        kernels.append(params[kernel_offset : kernel_offset + n_in * n_out].reshape((n_in, n_out)))
        biases.append(params[bias_offset : bias_offset + n_out])
    return kernels, biases


@_jit
def _workspace(rows, n_features, layout, dtype_like):
    """Buffers for one batch of ``rows`` samples: inputs, targets, and per layer its output and dL/d(output)."""
    n_layers = layout.shape[0]
    inputs = np.empty((rows, n_features), dtype=dtype_like.dtype)
    targets = np.empty((rows, layout[n_layers - 1, 1]), dtype=dtype_like.dtype)
    outputs = [inputs]
    deltas = [inputs]
    outputs.clear()
    deltas.clear()
    for layer in range(n_layers):
        outputs.append(np.empty((rows, layout[layer, 1]), dtype=dtype_like.dtype))
        deltas.append(np.empty((rows, layout[layer, 1]), dtype=dtype_like.dtype))
    per_sample = np.empty(rows, dtype=dtype_like.dtype)
    return inputs, targets, outputs, deltas, per_sample


# --- one batch ----------------------------------------------------------------------


@_inline
def _forward(profile, caches, inputs, kernels, biases, layout, outputs):
    """Every layer's output for one batch, into ``outputs[layer]``; returns the last."""
    for layer in range(layout.shape[0]):
        _dense(profile, caches, inputs, kernels[layer], biases[layer], outputs[layer])
        _activate(profile, layout[layer, 2], outputs[layer])
        inputs = outputs[layer]
    return inputs


@_inline
def _batch_loss(profile, loss, y_true, y_pred, per_sample, delta, with_gradient):
    """Keras's batch loss sum(per-sample mean over outputs) / B.

    With ``with_gradient`` (a constant), the same pass also fills
    ``delta`` = dL/d(y_pred); training uses it only if the loss is finite.
    """
    rows, n_outputs = y_pred.shape
    scale = cast(1, y_pred) / cast(rows, y_pred) / cast(n_outputs, y_pred)
    for b in range(rows):
        acc = cast(0, y_pred)
        for j in range(n_outputs):
            error = y_true[b, j] - y_pred[b, j]
            value = _squared_error(error) if loss == 0 else _absolute_error(error)
            acc = value if j == 0 else acc + value
            if with_gradient:
                delta[b, j] = _squared_error_grad(error, scale) if loss == 0 else _absolute_error_grad(error, scale)
        per_sample[b] = acc / cast(n_outputs, y_pred)
    return _sum_vector(profile, per_sample) / cast(rows, y_pred)


@_inline
def _backward(profile, caches, inputs, kernels, layout, outputs, deltas, kernel_grads, bias_grads):
    """Fill the gradients from ``deltas[-1]`` = dL/d(y_pred); ``deltas`` are overwritten."""
    for layer in range(layout.shape[0] - 1, -1, -1):
        delta = deltas[layer]
        _activation_grad(profile, layout[layer, 2], outputs[layer], delta)
        if layer > 0:
            _matmul_grad_kernel(profile, caches, outputs[layer - 1], delta, kernel_grads[layer])
        else:
            _matmul_grad_kernel(profile, caches, inputs, delta, kernel_grads[layer])
        _sum_columns(profile, delta, bias_grads[layer])
        if layer > 0:
            _matmul_grad_input(profile, caches, delta, kernels[layer], deltas[layer - 1])


@_inline
def _apply_update(optimizer, hyper, params, grads, slots, iterations):
    learning_rate = hyper[0]
    if optimizer == 1:
        step = cast(iterations + 1, learning_rate)
        alpha = _adam_step_size(learning_rate, hyper[1], hyper[2], step)
        for i in range(params.shape[0]):
            params[i], slots[0, i], slots[1, i] = _adam_update(
                params[i], grads[i], slots[0, i], slots[1, i], alpha, hyper[3], hyper[4], hyper[5]
            )
    elif hyper[1] != 0:
        nesterov = hyper[2] != 0
        for i in range(params.shape[0]):
            params[i], slots[0, i] = _sgd_momentum_update(params[i], grads[i], slots[0, i], learning_rate, hyper[1], nesterov)
    else:
        for i in range(params.shape[0]):
            params[i] = _sgd_update(params[i], grads[i], learning_rate)


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
def _train_batch(profile, caches, loss, optimizer, hyper, x, y, order, start, params, grads, slots, iterations,
                 kernels, biases, kernel_grads, bias_grads, layout, inputs, targets, outputs, deltas, per_sample):
    """One step on the rows ``order[start : start + len(inputs)]``; returns the pre-update batch loss.

    A non-finite loss returns before any update.
    """
    _gather(x, y, order, start, inputs, targets)
    y_pred = _forward(profile, caches, inputs, kernels, biases, layout, outputs)
    batch = _batch_loss(profile, loss, targets, y_pred, per_sample, deltas[layout.shape[0] - 1], True)
    if np.isfinite(batch):
        _backward(profile, caches, inputs, kernels, layout, outputs, deltas, kernel_grads, bias_grads)
        _apply_update(optimizer, hyper, params, grads, slots, iterations)
    return batch


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
def _evaluate_loop(profile, caches, x, y, batch_size, params, layout, loss):
    """Keras's ``evaluate``: batch-size-weighted mean of batch losses, accumulated in the model dtype."""
    literally(profile)
    n = x.shape[0]
    kernels, biases = _parameter_views(params, layout)
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
def _predict_loop(profile, caches, x, batch_size, params, layout):
    literally(profile)
    n = x.shape[0]
    kernels, biases = _parameter_views(params, layout)
    result = np.empty((n, layout[layout.shape[0] - 1, 1]), dtype=x.dtype)
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
def _fit_loop(profile, caches, x, y, orders, batch_size, params, layout, loss, optimizer, hyper, slots, iterations,
              val_x, val_y, val_batch_size, loss_history, val_history):
    """Train ``orders.shape[0]`` epochs; epoch e visits rows ``orders[e]`` in consecutive batches.

    Returns ``(iterations, epochs_completed, failed_batch)``. A batch whose loss is not
    finite stops training: parameters, optimizer state and iterations are put back to
    the end of the last completed epoch, and ``failed_batch`` is its index (-1 otherwise).
    """
    literally(profile)
    n = x.shape[0]
    grads = np.zeros_like(params)
    kernels, biases = _parameter_views(params, layout)
    kernel_grads, bias_grads = _parameter_views(grads, layout)
    saved_params = params.copy()
    saved_slots = slots.copy()
    full = _workspace(min(batch_size, n), x.shape[1], layout, x)
    last = _workspace(n % batch_size if n % batch_size else batch_size, x.shape[1], layout, x)
    n_full = n // batch_size
    for epoch in range(orders.shape[0]):
        order = orders[epoch]
        _copy_flat(params, saved_params)
        _copy_flat(slots.reshape(-1), saved_slots.reshape(-1))
        saved_iterations = iterations
        total = cast(0, x)
        count = cast(0, x)
        for batch_index in range(n_full + (1 if n % batch_size else 0)):
            # The last batch may be partial: it has buffers of its own (one call site keeps the compile small).
            inputs, targets, outputs, deltas, per_sample = full if batch_index < n_full else last
            rows = cast(inputs.shape[0], x)
            batch = _train_batch(profile, caches, loss, optimizer, hyper, x, y, order, batch_index * batch_size, params, grads, slots,
                                 iterations, kernels, biases, kernel_grads, bias_grads, layout, inputs, targets, outputs,
                                 deltas, per_sample)
            if not np.isfinite(batch):
                _copy_flat(saved_params, params)
                _copy_flat(saved_slots.reshape(-1), slots.reshape(-1))
                return saved_iterations, epoch, batch_index
            # Keras's loss metric: a batch-size-weighted running mean of the pre-update batch losses.
            total = total + batch * rows
            count = count + rows
            iterations += 1
        loss_history[epoch] = total / count
        if val_x.shape[0] > 0:
            val_history[epoch] = _evaluate_loop(profile, caches, val_x, val_y, val_batch_size, params, layout, loss)
    return iterations, orders.shape[0], -1


# --- entry points, one compiled function per profile -----------------------------
# Each passes its profile id as a constant (a closure variable), so the profile is a
# literal while typing and no call from Python goes through ``literally``'s
# recompile-on-demand. Distinct names keep their on-disk cache entries apart.


def _entries(profile_id: int, tag: str):
    def fit(caches, x, y, orders, batch_size, params, layout, loss, optimizer, hyper, slots, iterations,
            val_x, val_y, val_batch_size, loss_history, val_history):
        return _fit_loop(profile_id, caches, x, y, orders, batch_size, params, layout, loss, optimizer, hyper, slots,
                         iterations, val_x, val_y, val_batch_size, loss_history, val_history)

    def evaluate(caches, x, y, batch_size, params, layout, loss):
        return _evaluate_loop(profile_id, caches, x, y, batch_size, params, layout, loss)

    def predict(caches, x, batch_size, params, layout):
        return _predict_loop(profile_id, caches, x, batch_size, params, layout)

    compiled = []
    for function in (fit, evaluate, predict):
        function.__name__ = function.__qualname__ = f"_{function.__name__}_{tag}"
        compiled.append(_jit(function))
    return tuple(compiled)


_ENTRIES = {profile_id: _entries(profile_id, name.replace("/", "_").replace("-", "_"))
            for name, profile_id in PROFILE_IDS.items()}


def fit_loop(profile, *args):
    """Train ``orders.shape[0]`` epochs; see ``_fit_loop`` (same arguments as the NumPy engine's ``fit_loop``).

    ``profile`` is a :class:`gdcore.numerics.Profile`.
    """
    return _ENTRIES[profile.id][0](profile.caches, *args)


def evaluate_loop(profile, *args):
    """Keras's ``evaluate`` loss; see ``_evaluate_loop``."""
    return _ENTRIES[profile.id][1](profile.caches, *args)


def predict_loop(profile, *args):
    """Outputs in batches; see ``_predict_loop``."""
    return _ENTRIES[profile.id][2](profile.caches, *args)
