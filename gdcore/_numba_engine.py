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
from numba import njit

from gdcore import activations, losses, optimizers
from gdcore._dtype import cast
from gdcore.numerics import _plain, _tensorflow, eigen

_jit = njit(cache=True, error_model="numpy", nogil=True)

_linear = _jit(activations.linear)
_sigmoid = _jit(activations.sigmoid)
_tanh = _jit(activations.tanh)
_relu = _jit(activations.relu)
_linear_grad = _jit(activations.linear_grad)
_sigmoid_grad = _jit(activations.sigmoid_grad)
_tanh_grad = _jit(activations.tanh_grad)
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


@_jit
def _matmul(profile, inputs, kernel, out):
    if profile == 1:
        _tensorflow.matmul_loop(inputs, kernel, out)
    else:
        _plain.matmul_loop(inputs, kernel, out)


@_jit
def _matmul_grad_input(profile, delta, kernel, out):
    if profile == 1:
        _tensorflow.matmul_grad_input_loop(delta, kernel, out)
    else:
        _plain.matmul_grad_input_loop(delta, kernel, out)


@_jit
def _matmul_grad_kernel(profile, inputs, delta, out):
    if profile == 1:
        _tensorflow.matmul_grad_kernel_loop(inputs, delta, out)
    else:
        _plain.matmul_grad_kernel_loop(inputs, delta, out)


@_jit
def _sum_vector(profile, values):
    if profile == 1:
        return _tensorflow.sum_vector_loop(values)
    return _plain.sum_vector_loop(values)


@_jit
def _sum_columns(profile, values, out):
    if profile == 1:
        _tensorflow.sum_columns_loop(values, out)
    else:
        _plain.sum_columns_loop(values, out)


# --- one batch ----------------------------------------------------------------------


@_jit
def _activate(profile, activation, z, bias):
    """z[b, j] <- f(z[b, j] + bias[j]) in place; the branch is outside the loops so they vectorise."""
    rows, cols = z.shape
    if activation == 1 and profile == 1:
        for b in range(rows):
            for j in range(cols):
                z[b, j] = z[b, j] + bias[j]
        eigen.logistic_tensorflow_loop(z, z)
    elif activation == 1:
        for b in range(rows):
            for j in range(cols):
                z[b, j] = _sigmoid(z[b, j] + bias[j])
    elif activation == 2:
        for b in range(rows):
            for j in range(cols):
                z[b, j] = _tanh(z[b, j] + bias[j])
    elif activation == 3:
        for b in range(rows):
            for j in range(cols):
                z[b, j] = _relu(z[b, j] + bias[j])
    else:
        for b in range(rows):
            for j in range(cols):
                z[b, j] = z[b, j] + bias[j]


@_jit
def _activation_grad(profile, activation, y, delta):
    """delta <- dL/dz from delta = dL/dy and the layer's output y, in place."""
    rows, cols = y.shape
    if activation == 1 and profile == 1:
        eigen.logistic_grad_tensorflow_loop(y, delta, delta)
    elif activation == 1:
        for b in range(rows):
            for j in range(cols):
                delta[b, j] = _sigmoid_grad(y[b, j], delta[b, j])
    elif activation == 2:
        for b in range(rows):
            for j in range(cols):
                delta[b, j] = _tanh_grad(y[b, j], delta[b, j])
    elif activation == 3:
        for b in range(rows):
            for j in range(cols):
                delta[b, j] = _relu_grad(y[b, j], delta[b, j])


@_jit
def _layer_views(params, layout, layer):
    n_in, n_out, _, kernel_offset, bias_offset = layout[layer]
    kernel = params[kernel_offset : kernel_offset + n_in * n_out].reshape((n_in, n_out))
    return kernel, params[bias_offset : bias_offset + n_out]


@_jit
def _output_view(outputs, layout, layer, rows):
    n_out = layout[layer, 1]
    offset = 0
    for previous in range(layer):
        offset += layout[previous, 1]
    start = offset * (outputs.shape[0] // _total_units(layout))
    return outputs[start : start + rows * n_out].reshape((rows, n_out))


@_jit
def _total_units(layout):
    total = 0
    for layer in range(layout.shape[0]):
        total += layout[layer, 1]
    return total


@_jit
def _forward(profile, inputs, params, layout, outputs):
    """Every layer's output for one batch, into ``outputs`` (flat buffer, batch_size * total units)."""
    rows = inputs.shape[0]
    for layer in range(layout.shape[0]):
        kernel, bias = _layer_views(params, layout, layer)
        out = _output_view(outputs, layout, layer, rows)
        _matmul(profile, inputs, kernel, out)
        _activate(profile, layout[layer, 2], out, bias)
        inputs = out
    return inputs


@_jit
def _batch_loss(profile, loss, y_true, y_pred, per_sample):
    """Keras's batch loss sum(per-sample mean over outputs) / B; per_sample is scratch of length >= B."""
    rows, n_outputs = y_pred.shape
    for b in range(rows):
        acc = cast(0, y_pred)
        for j in range(n_outputs):
            error = y_true[b, j] - y_pred[b, j]
            value = _squared_error(error) if loss == 0 else _absolute_error(error)
            acc = value if j == 0 else acc + value
        per_sample[b] = acc / cast(n_outputs, y_pred)
    return _sum_vector(profile, per_sample[:rows]) / cast(rows, y_pred)


@_jit
def _output_grad(loss, y_true, y_pred, delta):
    rows, n_outputs = y_pred.shape
    scale = cast(1, y_pred) / cast(rows, y_pred) / cast(n_outputs, y_pred)
    for b in range(rows):
        for j in range(n_outputs):
            error = y_true[b, j] - y_pred[b, j]
            if loss == 0:
                delta[b, j] = _squared_error_grad(error, scale)
            else:
                delta[b, j] = _absolute_error_grad(error, scale)


@_jit
def _backward(profile, inputs, params, layout, outputs, delta_buffers, grads):
    """Fill ``grads`` (flat, like params) from the output gradient held in ``delta_buffers[0]``."""
    rows = inputs.shape[0]
    current = 0
    for layer in range(layout.shape[0] - 1, -1, -1):
        n_in, n_out, activation, kernel_offset, bias_offset = layout[layer]
        y = _output_view(outputs, layout, layer, rows)
        delta = delta_buffers[current, : rows * n_out].reshape((rows, n_out))
        _activation_grad(profile, activation, y, delta)
        layer_inputs = inputs if layer == 0 else _output_view(outputs, layout, layer - 1, rows)
        kernel_grad = grads[kernel_offset : kernel_offset + n_in * n_out].reshape((n_in, n_out))
        _matmul_grad_kernel(profile, layer_inputs, delta, kernel_grad)
        _sum_columns(profile, delta, grads[bias_offset : bias_offset + n_out])
        if layer > 0:
            kernel, _ = _layer_views(params, layout, layer)
            previous = delta_buffers[1 - current, : rows * n_in].reshape((rows, n_in))
            _matmul_grad_input(profile, delta, kernel, previous)
            current = 1 - current


@_jit
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
def permutations(uniforms):
    """One permutation of ``range(n)`` per row of ``uniforms`` (shape (epochs, n), values in [0, 1)).

    Fisher-Yates driven by the given draws: position i swaps with
    ``i + floor(u[i] * (n - i))``. The draws come from the model's NumPy
    generator, so a seed fixes every epoch's order.
    """
    epochs, n = uniforms.shape
    orders = np.empty((epochs, n), dtype=np.int64)
    for epoch in range(epochs):
        order = orders[epoch]
        for i in range(n):
            order[i] = i
        for i in range(n - 1):
            j = i + int(uniforms[epoch, i] * (n - i))
            order[i], order[j] = order[j], order[i]
    return orders


@_jit
def _gather(source, order, start, rows, out):
    view = out[: rows * source.shape[1]].reshape((rows, source.shape[1]))
    for b in range(rows):
        row = order[start + b]
        for j in range(source.shape[1]):
            view[b, j] = source[row, j]
    return view


@_jit
def evaluate_loop(profile, x, y, batch_size, params, layout, loss):
    """Keras's ``evaluate``: batch-size-weighted mean of batch losses, accumulated in the model dtype."""
    n = x.shape[0]
    width = max(_total_units(layout), 1)
    outputs = np.empty(batch_size * width, dtype=x.dtype)
    per_sample = np.empty(batch_size, dtype=x.dtype)
    total = cast(0, x)
    count = cast(0, x)
    for start in range(0, n, batch_size):
        rows = min(batch_size, n - start)
        y_pred = _forward(profile, x[start : start + rows], params, layout, outputs)
        batch = _batch_loss(profile, loss, y[start : start + rows], y_pred, per_sample)
        total = total + batch * cast(rows, x)
        count = count + cast(rows, x)
    return total / count


@_jit
def predict_loop(profile, x, batch_size, params, layout):
    n = x.shape[0]
    n_out = layout[layout.shape[0] - 1, 1]
    result = np.empty((n, n_out), dtype=x.dtype)
    outputs = np.empty(batch_size * _total_units(layout), dtype=x.dtype)
    for start in range(0, n, batch_size):
        rows = min(batch_size, n - start)
        result[start : start + rows] = _forward(profile, x[start : start + rows], params, layout, outputs)
    return result


@_jit
def fit_loop(profile, x, y, orders, batch_size, params, layout, loss, optimizer, hyper, slots, iterations,
             val_x, val_y, val_batch_size, loss_history, val_history):
    """Train ``orders.shape[0]`` epochs; epoch e visits rows ``orders[e]`` in consecutive batches.

    Returns ``(iterations, epochs_completed, failed_batch)``. A batch whose loss is not
    finite stops training: parameters, optimizer state and iterations are put back to
    the end of the last completed epoch, and ``failed_batch`` is its index (-1 otherwise).
    """
    n = x.shape[0]
    n_features = x.shape[1]
    n_outputs = y.shape[1]
    width = max(_total_units(layout), 1)
    max_width = n_features
    for layer in range(layout.shape[0]):
        max_width = max(max_width, layout[layer, 1])
    batch_x = np.empty(batch_size * n_features, dtype=x.dtype)
    batch_y = np.empty(batch_size * n_outputs, dtype=x.dtype)
    outputs = np.empty(batch_size * width, dtype=x.dtype)
    per_sample = np.empty(batch_size, dtype=x.dtype)
    delta_buffers = np.empty((2, batch_size * max_width), dtype=x.dtype)
    grads = np.empty_like(params)
    saved_params = params.copy()
    saved_slots = slots.copy()
    for epoch in range(orders.shape[0]):
        saved_params[:] = params
        saved_slots[:] = slots
        saved_iterations = iterations
        total = cast(0, x)
        count = cast(0, x)
        batch_index = 0
        for start in range(0, n, batch_size):
            rows = min(batch_size, n - start)
            inputs = _gather(x, orders[epoch], start, rows, batch_x)
            targets = _gather(y, orders[epoch], start, rows, batch_y)
            y_pred = _forward(profile, inputs, params, layout, outputs)
            batch = _batch_loss(profile, loss, targets, y_pred, per_sample)
            if not np.isfinite(batch):
                params[:] = saved_params
                slots[:] = saved_slots
                return saved_iterations, epoch, batch_index
            total = total + batch * cast(rows, x)
            count = count + cast(rows, x)
            _output_grad(loss, targets, y_pred, delta_buffers[0, : rows * n_outputs].reshape((rows, n_outputs)))
            _backward(profile, inputs, params, layout, outputs, delta_buffers, grads)
            _apply_update(optimizer, hyper, params, grads, slots, iterations)
            iterations += 1
            batch_index += 1
        loss_history[epoch] = total / count
        if val_x.shape[0] > 0:
            val_history[epoch] = evaluate_loop(profile, val_x, val_y, val_batch_size, params, layout, loss)
    return iterations, orders.shape[0], -1
