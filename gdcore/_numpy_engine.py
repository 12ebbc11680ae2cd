"""The readable engine: one training step in a dozen lines of NumPy.

This is the reference a student reads. Each reduction is the numerics
profile's NumPy function (``profile.matmul``, ``profile.sum_columns``, ...);
the elementwise maths is the same functions the compiled engine uses.
It takes the same arguments as :mod:`gdcore._numba_engine` and is tested to
give the same bits.
"""

import numpy as np

from gdcore import activations, losses, optimizers
from gdcore._dtype import cast


def _layers(params: np.ndarray, layout: np.ndarray):
    """(kernel, bias, activation) per layer, as views into the flat parameter array."""
    for n_in, n_out, activation_id, kernel_offset, bias_offset in layout:
        kernel = params[kernel_offset : kernel_offset + n_in * n_out].reshape(n_in, n_out)
        bias = params[bias_offset : bias_offset + n_out]
        yield kernel, bias, activations.BY_ID[activation_id]


def forward(profile, inputs: np.ndarray, params: np.ndarray, layout: np.ndarray) -> list[np.ndarray]:
    """``[x, a_1, ..., y_pred]``: :math:`a_l = f_l(a_{l-1} W_l + b_l)`."""
    outputs = [inputs]
    for kernel, bias, activation in _layers(params, layout):
        outputs.append(profile.activate(activation, profile.matmul(outputs[-1], kernel) + bias))
    return outputs


def backward(profile, outputs: list[np.ndarray], params: np.ndarray, layout: np.ndarray, output_grad: np.ndarray) -> np.ndarray:
    r"""Gradients of every parameter, flat like ``params``.

    For each layer from the last: :math:`\delta \leftarrow f'(\delta)`,
    :math:`\nabla W = a_{l-1}^T\delta`, :math:`\nabla b = \sum_b \delta`,
    then :math:`\delta \leftarrow \delta W^T` for the layer below.
    """
    grads = np.empty_like(params)
    grad_views = list(_layers(grads, layout))
    layers = list(_layers(params, layout))
    delta = output_grad
    for index in reversed(range(len(layers))):
        kernel, _, activation = layers[index]
        kernel_grad, bias_grad, _ = grad_views[index]
        delta = profile.activation_grad(activation, outputs[index + 1], delta)
        kernel_grad[:] = profile.matmul_grad_kernel(outputs[index], delta)
        bias_grad[:] = profile.sum_columns(delta)
        if index > 0:
            delta = profile.matmul_grad_input(delta, kernel)
    return grads


def apply_update(optimizer_id: int, hyper: np.ndarray, params, grads, slots, iterations: int) -> None:
    """One optimizer step on the flat arrays, in place."""
    learning_rate = hyper[0]
    if optimizer_id == optimizers.ADAM_ID:
        step = cast(iterations + 1, learning_rate)
        alpha = optimizers.adam_step_size(learning_rate, hyper[1], hyper[2], step)
        params[:], slots[0], slots[1] = optimizers.adam_update(params, grads, slots[0], slots[1], alpha, hyper[3], hyper[4], hyper[5])
    elif hyper[1] != 0:
        params[:], slots[0] = optimizers.sgd_momentum_update(params, grads, slots[0], learning_rate, hyper[1], hyper[2] != 0)
    else:
        params[:] = optimizers.sgd_update(params, grads, learning_rate)


def evaluate_loop(profile, x, y, batch_size, params, layout, loss_id):
    loss = losses.BY_ID[loss_id]
    total = count = cast(0, x)
    for start in range(0, x.shape[0], batch_size):
        y_batch = y[start : start + batch_size]
        batch = losses.batch_loss(loss, profile, y_batch, forward(profile, x[start : start + batch_size], params, layout)[-1])
        total = total + batch * cast(len(y_batch), x)
        count = count + cast(len(y_batch), x)
    return total / count


def predict_loop(profile, x, batch_size, params, layout):
    batches = [forward(profile, x[start : start + batch_size], params, layout)[-1] for start in range(0, x.shape[0], batch_size)]
    return np.concatenate(batches)


def fit_loop(profile, x, y, orders, batch_size, params, layout, loss_id, optimizer_id, hyper, slots, iterations,
             val_x, val_y, val_batch_size, loss_history, val_history):
    """Same contract as :func:`gdcore._numba_engine.fit_loop` (``profile``: a :class:`gdcore.numerics.Profile`)."""
    loss = losses.BY_ID[loss_id]
    for epoch, order in enumerate(orders):
        saved = params.copy(), slots.copy(), iterations
        total = count = cast(0, x)
        for batch_index, start in enumerate(range(0, x.shape[0], batch_size)):
            rows = order[start : start + batch_size]
            inputs, targets = x[rows], y[rows]
            outputs = forward(profile, inputs, params, layout)
            batch = losses.batch_loss(loss, profile, targets, outputs[-1])
            if not np.isfinite(batch):
                params[:], slots[:], iterations = saved
                return iterations, epoch, batch_index
            total = total + batch * cast(len(rows), x)  # Keras's loss metric: a batch-size-weighted running mean
            count = count + cast(len(rows), x)
            grads = backward(profile, outputs, params, layout, losses.output_grad(loss, targets, outputs[-1]))
            apply_update(optimizer_id, hyper, params, grads, slots, iterations)
            iterations += 1
        loss_history[epoch] = total / count
        if len(val_x):
            val_history[epoch] = evaluate_loop(profile, val_x, val_y, val_batch_size, params, layout, loss_id)
    return iterations, len(orders), -1
