"""The readable engine: one training step in a dozen lines of NumPy.

This is the reference a student reads. Each reduction is the numerics
profile's NumPy function (``profile.matmul``, ``profile.sum_columns``, ...);
the elementwise maths is the same functions the compiled engine uses. It
takes the same arguments as :mod:`gdcore._numba_engine` (the contract of
:mod:`gdcore._contract`) and is tested to give the same bits; it also honours
an ``on_step`` hook, called after every update, which is how traces and
explanations observe the real step instead of redoing it.
"""

import numpy as np

from gdcore import activations, constraints, losses, metrics as metric_table, optimizers, regularizers
from gdcore._contract import (FAILURE_LOSS, FAILURE_UPDATE, FAILURE_VALIDATION, Batches, Epochs, Log, LossRule, Network,
                              OptimizerState, Step, Window)
from gdcore._dtype import cast


def _layers(params: np.ndarray, layout):
    """(kernel, bias, activation, parameters) per layer, as views into the flat parameter array (an empty bias: no
    bias); ``parameters`` are the layer's ``activation_p0``, ``activation_p1``, ``activation_p2``."""
    for layer in layout:
        kernel = params[layer.kernel : layer.kernel + layer.n_in * layer.n_out].reshape(layer.n_in, layer.n_out)
        bias = params[layer.bias : layer.bias + layer.n_out * layer.use_bias]
        yield (kernel, bias, activations.BY_ID[int(layer.activation)],
               (float(layer.activation_p0), float(layer.activation_p1), float(layer.activation_p2)))


def forward(profile, inputs: np.ndarray, params: np.ndarray, layout, pre_activations: list | None = None
            ) -> list[np.ndarray]:
    """``[x, a_1, ..., y_pred]``: :math:`a_l = f_l(z_l)`, :math:`z_l = a_{l-1} W_l + b_l` (appended to ``pre_activations``, if given).

    Without a bias :math:`z_l = a_{l-1} W_l`, and :math:`f_l` is evaluated unfused (``Profile.activate``).
    """
    outputs = [inputs]
    for kernel, bias, activation, parameters in _layers(params, layout):
        z = profile.dense(outputs[-1], kernel, bias) if bias.size else profile.matmul(outputs[-1], kernel)
        if pre_activations is not None:
            pre_activations.append(z)
        outputs.append(profile.activate(activation, z, fused=bias.size > 0, parameters=parameters))
    return outputs


def backward(profile, outputs: list[np.ndarray], params: np.ndarray, layout, output_grad: np.ndarray,
             pre_activations: list | None = None) -> np.ndarray:
    r"""Gradients of every parameter, flat like ``params``.

    For each layer from the last: :math:`\delta \leftarrow f'(\delta)`,
    :math:`\nabla W = a_{l-1}^T\delta`, :math:`\nabla b = \sum_b \delta`,
    then :math:`\delta \leftarrow \delta W^T` for the layer below.
    :math:`f'` reads the layer's output or its pre-activation
    (``Activation.grad_reads``); without ``pre_activations`` a pre-activation
    that is needed is recomputed, with the same bits.
    """
    grads = np.empty_like(params)
    grad_views = list(_layers(grads, layout))
    layers = list(_layers(params, layout))
    delta = output_grad
    for index in reversed(range(len(layers))):
        kernel, bias, activation, parameters = layers[index]
        kernel_grad, bias_grad, *_ = grad_views[index]
        if layout[index].activity_regularized:
            delta = regularizers.add_activity_gradient(delta, outputs[index + 1], float(layout[index].activity_l1),
                                                       float(layout[index].activity_l2), index == len(layers) - 1)
        if activation.reads_input:
            z = (pre_activations[index] if pre_activations is not None
                 else profile.dense(outputs[index], kernel, bias) if bias.size
                 else profile.matmul(outputs[index], kernel))
        else:
            z = None
        delta = profile.activation_grad(activation, activation.grad_operand(z, outputs[index + 1]), delta, parameters)
        kernel_grad[:] = profile.matmul_grad_kernel(outputs[index], delta)
        if bias_grad.size:
            bias_grad[:] = profile.sum_columns(delta)
        if index > 0:
            delta = profile.matmul_grad_input(delta, kernel)
    return grads


def gradients(profile, inputs: np.ndarray, targets: np.ndarray, network: Network, loss, sample_weight=None,
              reduction=None):
    """``(batch_loss, grads, outputs)`` of one batch at the current weights; ``grads`` is None if the loss is not finite.

    The loss and the gradients include the layers' regularizers (:func:`gdcore.regularizers.total_loss`);
    ``reduction`` is a code of :data:`gdcore.losses.REDUCTION_IDS` (default: the loss's own).
    """
    pre_activations = []
    outputs = forward(profile, inputs, network.params, network.layout, pre_activations)
    batch = regularizers.total_loss(
        profile, losses.batch_loss(loss, profile, targets, outputs[-1], sample_weight, reduction),
        network.params, network.layout, outputs)
    if not np.isfinite(batch):
        return batch, None, outputs
    grads = backward(profile, outputs, network.params, network.layout,
                     losses.output_grad(loss, targets, outputs[-1], sample_weight, profile, reduction), pre_activations)
    regularizers.add_gradients(grads, network.params, network.layout)
    return batch, grads, outputs


def accumulate_metrics(metrics, y_true: np.ndarray, y_pred: np.ndarray, profile, sums: np.ndarray,
                       weights: np.ndarray, fused: bool = True) -> None:
    """Keras's ``Mean`` per metric: ``sums[k] += [fl(sum_b m_b), B]``, weighted: ``[fl(sum_b m_b w_b), fl(sum_b w_b)]``.

    The metrics read ``metrics.activation`` of ``y_pred`` (the probabilities, when ``y_pred`` holds logits;
    ``fused``: the output layer has a bias, ``Profile.activate``).
    """
    if len(metrics.ids) and metrics.activation != activations.LINEAR.id:
        y_pred = profile.activate(activations.BY_ID[int(metrics.activation)], y_pred, fused=fused)
    for k, metric_id in enumerate(metrics.ids):
        values = metric_table.per_sample(metric_table.BY_ID[int(metric_id)], y_true, y_pred, metrics.thresholds[k],
                                         losses.packet_width(profile, y_pred.dtype))
        if metrics.weighted[k]:
            sums[k, 0] = sums[k, 0] + profile.sum_vector(values * weights)
            sums[k, 1] = sums[k, 1] + profile.sum_vector(weights)
        else:
            sums[k, 0] = sums[k, 0] + profile.sum_vector(values)
            sums[k, 1] = sums[k, 1] + cast(len(values), values)


def evaluate_loop(profile, batches: Batches, network: Network, rule: LossRule, metrics: np.ndarray, sums: np.ndarray):
    """Keras's ``evaluate``: adds the loss metric (batch losses, batch-size weighted) and the metrics into ``sums``."""
    loss, x, y, batch_size = losses.BY_ID[rule.id], batches.x, batches.y, batches.batch_size
    for start in range(0, x.shape[0], batch_size):
        y_batch, weights = y[start : start + batch_size], batches.sample_weight[start : start + batch_size]
        outputs = forward(profile, x[start : start + batch_size], network.params, network.layout)
        y_pred = outputs[-1]
        batch = regularizers.total_loss(profile, losses.batch_loss(loss, profile, y_batch, y_pred, weights,
                                                                   rule.reduction), network.params, network.layout,
                                        outputs)
        sums[0, 0] = sums[0, 0] + batch * cast(len(y_batch), x)
        sums[0, 1] = sums[0, 1] + cast(len(y_batch), x)
        accumulate_metrics(metrics, y_batch, y_pred, profile, sums[1:], weights, bool(network.layout[-1].use_bias))


def predict_loop(profile, batches: Batches, network: Network):
    x, batch_size = batches.x, batches.batch_size
    return np.concatenate([forward(profile, x[start : start + batch_size], network.params, network.layout)[-1]
                           for start in range(0, x.shape[0], batch_size)])


def _restore(window, params, slots, reason) -> int:
    """Put the parameters and optimizer state back to the epoch's start; the iteration count to return."""
    params[:], slots[:] = window.saved_params, window.saved_slots
    window.failure[0] = reason
    return int(window.saved_iterations[0])


def fit_loop(profile, epochs: Epochs, network: Network, rule: LossRule, metrics: np.ndarray, optimizer: OptimizerState,
             log: Log, window: Window, on_step=None):
    """Same contract as :func:`gdcore._numba_engine.fit_loop` (:mod:`gdcore._contract`), plus the ``on_step`` hook."""
    loss, x, y, params, slots = losses.BY_ID[rule.id], epochs.x, epochs.y, network.params, optimizer.slots
    iterations, steps = optimizer.iterations, 0
    n_batches = -(-x.shape[0] // epochs.batch_size)
    for epoch, order in enumerate(epochs.orders):
        first = window.start_batch if epoch == 0 else 0
        if first == 0:
            window.saved_params[:], window.saved_slots[:], window.saved_iterations[0] = params, slots, iterations
            total = count = cast(0, x)
            metric_sums = np.zeros((len(metrics.ids), 2), x.dtype)
        else:
            total, count = window.running[0], window.running[1]
            metric_sums = window.metric_running.copy()
        for batch_index in range(first, n_batches):
            start = batch_index * epochs.batch_size
            rows = order[start : start + epochs.batch_size]
            batch, grads, outputs = gradients(profile, x[rows], y[rows], network, loss, epochs.sample_weight[rows],
                                              rule.reduction)
            if grads is None:
                return _restore(window, params, slots, FAILURE_LOSS), epoch, steps, batch_index
            accumulate_metrics(metrics, y[rows], outputs[-1], profile, metric_sums,  # the pre-update predictions
                               epochs.sample_weight[rows], bool(network.layout[-1].use_bias))
            total = total + batch * cast(len(rows), x)  # Keras's loss metric: a batch-size-weighted running mean
            count = count + cast(len(rows), x)
            before = params.copy() if on_step is not None else None
            optimizers.apply_update(optimizer.hyper, params, grads, slots, iterations, optimizer.lanes, optimizer.options)
            constraints.apply(profile, params, network.layout)
            if not (np.isfinite(params).all() and np.isfinite(slots).all()):
                return _restore(window, params, slots, FAILURE_UPDATE), epoch, steps, batch_index
            iterations += 1
            if on_step is not None:
                on_step(Step(epoch, batch_index, rows, batch, before, grads, params.copy()))
            if steps < window.batch_loss.shape[0]:
                window.batch_loss[steps] = total / count
                window.batch_metrics[steps] = metric_sums
            steps += 1
            if steps == window.max_steps and batch_index + 1 < n_batches:
                window.running[0], window.running[1] = total, count
                window.metric_running[:] = metric_sums
                return iterations, epoch, steps, -1
        log.loss[epoch] = total / count
        log.metrics[epoch] = metric_sums
        if len(epochs.val.x):
            sums = np.zeros((1 + len(metrics.ids), 2), x.dtype)
            evaluate_loop(profile, epochs.val, network, rule, metrics, sums)
            log.val_loss[epoch], log.val_metrics[epoch] = sums[0, 0] / sums[0, 1], sums[1:]
            if not np.isfinite(log.val_loss[epoch]):
                return _restore(window, params, slots, FAILURE_VALIDATION), epoch, steps, n_batches
        if steps >= window.max_steps:
            return iterations, epoch + 1, steps, -1
    return iterations, len(epochs.orders), steps, -1
