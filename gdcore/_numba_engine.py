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
the named tuples of :mod:`gdcore._contract`, passed into compiled code as plain
tuples (:func:`plain_fit_arguments`) and named again inside. Kernels are compiled on first
use and cached on disk (``cache=True``), so importing gdcore compiles nothing
and a notebook's second start loads them.
"""

import numpy as np
from numba import literally, njit, types
from numba.core import errors
from numba.extending import overload

from gdcore import activations, constraints, losses, metrics as metric_table, optimizers
from gdcore._contract import (FAILURE_LOSS, FAILURE_UPDATE, FAILURE_VALIDATION, Batches, Epochs, Log, LossRule,
                              Metrics, Network, OptimizerState, Window)
from gdcore._dispatch import switch
from gdcore._dtype import cast, jitable
from gdcore.numerics import PROFILE_IDS, _plain, _tensorflow
from gdcore.numerics.eigen_reductions import inner_sum
from gdcore.numerics.lanes import lane_of
from gdcore.numerics.machine import Caches

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


def _matmul(profile, caches, inputs, kernel, out):
    """Compiled code only: the profile's ``matmul_loop`` (a Dense layer without a bias)."""


def _matmul_grad_input(profile, caches, delta, kernel, out):
    """Compiled code only: the profile's ``matmul_grad_input_loop``."""


def _matmul_grad_kernel(profile, caches, inputs, delta, out):
    """Compiled code only: the profile's ``matmul_grad_kernel_loop``."""


def _sum_vector(profile, values):
    """Compiled code only: the profile's ``sum_vector_loop``."""


def _sum_columns(profile, values, out):
    """Compiled code only: the profile's ``sum_columns_loop``."""


def _reduce_sum_rows(profile, values, out):
    """Compiled code only: the profile's ``reduce_sum_rows_loop``."""


@overload(_dense, **_overload)
def _dense_numba(profile, caches, inputs, kernel, bias, out):
    loop = _profile_module(profile).dense_loop
    if _takes_caches(profile):
        return lambda profile, caches, inputs, kernel, bias, out: loop(inputs, kernel, bias, out, caches)
    return lambda profile, caches, inputs, kernel, bias, out: loop(inputs, kernel, bias, out)


@overload(_matmul, **_overload)
def _matmul_numba(profile, caches, inputs, kernel, out):
    loop = _profile_module(profile).matmul_loop
    if _takes_caches(profile):
        return lambda profile, caches, inputs, kernel, out: loop(inputs, kernel, out, caches)
    return lambda profile, caches, inputs, kernel, out: loop(inputs, kernel, out)


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


@overload(_reduce_sum_rows, **_overload)
def _reduce_sum_rows_numba(profile, values, out):
    loop = _profile_module(profile).reduce_sum_rows_loop
    return lambda profile, values, out: loop(values, out)


# --- activations and losses: branch chains generated from their tables ---------------


def _activation_loops(profile, which: int, fused: bool = True):
    """Per activation, in id order: the profile's own loop if it has one, else the activation's (0 forward, 1 grad).

    ``fused=False``: after a product without a bias (``use_bias=False``), where TensorFlow fuses no activation
    into the product.
    """
    module = _profile_module(profile)
    return [module.activation_loops(a, fused)[which] for a in activations.ACTIVATIONS]


# Per activation id: whether its gradient reads the layer's pre-activation (``Activation.grad_reads``);
# a constant array of the compiled code.
_READS_INPUT = np.array([a.reads_input for a in activations.ACTIVATIONS], dtype=np.bool_)
# Which entries' loops take the layer's parameters (``Activation.parameters``, ``layout.activation_p0`` ...).
_PARAMETRIC = [bool(a.parameters) for a in activations.ACTIVATIONS]
_PARAMETERS = ["p0", "p1", "p2"]


@jitable
def _packet_width(profile, like):
    """The SIMD width whose packets the profile's position-dependent ops follow: 0 plain, else Eigen's 256-bit packets
    of ``like``'s dtype (:func:`gdcore.losses.packet_width`, compiled)."""
    return 0 if profile == 0 else 32 // like.itemsize


@jitable
def _reads_input(activation):
    return activation < _READS_INPUT.shape[0] and _READS_INPUT[activation]


def _activate(profile, activation, z, p0, p1, p2):
    """Compiled code only: z <- f(z) in place, the activation evaluated as the profile evaluates it (``p0..p2``:
    the layer's parameters, read by an entry that has them)."""


def _activate_unfused(profile, activation, z, p0, p1, p2):
    """Compiled code only: :func:`_activate` after a product without a bias."""


def _activation_grad(profile, activation, operand, delta, p0, p1, p2):
    """Compiled code only: delta <- dL/dz from delta = dL/dy and the layer's output or pre-activation, in place."""


@overload(_activate, **_overload)
def _activate_numba(profile, activation, z, p0, p1, p2):
    return switch("activate", _activation_loops(profile, 0), ["z"], "activation", leading=["profile"],
                  extra=_PARAMETERS, takes_extra=_PARAMETRIC)


@overload(_activate_unfused, **_overload)
def _activate_unfused_numba(profile, activation, z, p0, p1, p2):
    return switch("activate_unfused", _activation_loops(profile, 0, fused=False), ["z"], "activation",
                  leading=["profile"], extra=_PARAMETERS, takes_extra=_PARAMETRIC)


@overload(_activation_grad, **_overload)
def _activation_grad_numba(profile, activation, operand, delta, p0, p1, p2):
    return switch("activation_grad", _activation_loops(profile, 1), ["operand", "delta"], "activation",
                  leading=["profile"], extra=_PARAMETERS, takes_extra=_PARAMETRIC)


def _loss_pass_for(loss):
    """The compiled pass of ``loss`` over a batch: per-sample means (a row loss's values) and, optionally, dL/d(y_pred).

    ``inverse`` is the gradient of each weighted per-sample loss (:func:`gdcore.losses.gradient_scale`).

    ``packet`` is the SIMD width whose packets the profile's transcendental ops follow (0: plain), see
    :func:`gdcore.losses.fill_lanes`.
    """
    value, grad, row = loss.value, loss.grad, loss.row
    if row is not None:
        def row_pass(y_true, y_pred, weights, inverse, per_sample, delta, with_gradient, packet):
            rows, k = y_pred.shape
            lanes = np.empty(k + 1, np.int8)
            if packet == 0:  # a loop of its own, where the row's branches on the plain profile's 0 fold away
                losses.fill_lanes(lanes, 0, rows, 0)
                for b in range(rows):
                    per_sample[b] = row(y_true, y_pred, delta, b, inverse * weights[b], with_gradient, lanes,
                                        0) * weights[b]
            else:
                for b in range(rows):
                    losses.fill_lanes(lanes, b, rows, packet)
                    per_sample[b] = row(y_true, y_pred, delta, b, inverse * weights[b], with_gradient, lanes,
                                        packet) * weights[b]

        row_pass.__name__ = row_pass.__qualname__ = f"{loss.name}_pass"
        # Compiled once and called (not inlined): inlining every row loss into every entry point's IR
        # multiplied the cold compile time; one call per batch costs nothing next to the row loops.
        return _jit(row_pass)

    if loss.lanes:
        def term(y_true, y_pred, lane):
            return value(y_true, y_pred, lane)

        def term_grad(y_true, y_pred, scale, lane):
            return grad(y_true, y_pred, scale, lane)
    else:
        def term(y_true, y_pred, lane):
            return value(y_true, y_pred)

        def term_grad(y_true, y_pred, scale, lane):
            return grad(y_true, y_pred, scale)
    term, term_grad = _inline(term), _inline(term_grad)

    def output_means(y_true, y_pred, weights, per_sample, packet):
        # Keras's ops.mean(..., axis=-1) in the tensorflow profile: each row's terms summed in Eigen's inner-most
        # order (gdcore.numerics.eigen_reductions.mean_over_outputs). Called only for rows of a whole packet or
        # more (8 float32, 4 float64 outputs), so that no other run allocates the row.
        rows, n_outputs = y_pred.shape
        end = rows * n_outputs - (rows * n_outputs) % packet
        terms = np.empty(n_outputs, y_pred.dtype)
        for b in range(rows):
            for j in range(n_outputs):
                terms[j] = term(y_true[b, j], y_pred[b, j], lane_of(b * n_outputs + j, end, packet))
            per_sample[b] = inner_sum(terms) / cast(n_outputs, y_pred) * weights[b]

    output_means.__name__ = output_means.__qualname__ = f"{loss.name}_output_means"
    output_means = _jit(output_means)

    def loss_pass(y_true, y_pred, weights, inverse, per_sample, delta, with_gradient, packet):
        rows, n_outputs = y_pred.shape
        end = rows * n_outputs - (rows * n_outputs) % packet if packet else 0
        for b in range(rows):
            scale = inverse * weights[b] / cast(n_outputs, y_pred)
            acc = cast(0, y_pred)
            for j in range(n_outputs):
                lane = lane_of(b * n_outputs + j, end, packet)
                t = term(y_true[b, j], y_pred[b, j], lane)
                acc = t if j == 0 else acc + t
                if with_gradient:
                    delta[b, j] = term_grad(y_true[b, j], y_pred[b, j], scale, lane)
            per_sample[b] = acc / cast(n_outputs, y_pred) * weights[b]
        if packet and n_outputs >= packet:
            output_means(y_true, y_pred, weights, per_sample, packet)

    loss_pass.__name__ = loss_pass.__qualname__ = f"{loss.name}_pass"
    return _inline(loss_pass) if loss.targets == "values" else _jit(loss_pass)  # label losses: called, as row losses


_LOSS_PASSES = [_loss_pass_for(loss) for loss in losses.LOSSES]


def _loss_pass(loss, y_true, y_pred, weights, inverse, per_sample, delta, with_gradient, packet):
    """Compiled code only: the pass of loss ``loss`` (an id)."""


@overload(_loss_pass, inline="always", jit_options={"cache": True, "error_model": "numpy"})
def _loss_pass_numba(loss, y_true, y_pred, weights, inverse, per_sample, delta, with_gradient, packet):
    return switch("loss_pass", _LOSS_PASSES,
                  ["y_true", "y_pred", "weights", "inverse", "per_sample", "delta", "with_gradient", "packet"], "loss")


def _metric_pass_for(rule):
    """The compiled per-sample pass of a metric rule (:func:`gdcore.metrics.per_sample`, compiled)."""
    value, sample, row = rule.value, rule.sample, rule.row

    if row is not None:
        def metric_pass(y_true, y_pred, threshold, per_sample, packet):
            for b in range(y_pred.shape[0]):
                per_sample[b] = row(y_true[b], y_pred[b])
    else:
        if rule.lanes:
            def term(y_true, y_pred, threshold, lane):
                return value(y_true, y_pred, lane)
        elif rule.thresholded:
            def term(y_true, y_pred, threshold, lane):
                return value(y_true, y_pred, threshold)
        else:
            def term(y_true, y_pred, threshold, lane):
                return value(y_true, y_pred)
        term = _inline(term)

        def output_means(y_true, y_pred, threshold, per_sample, packet):
            # tf.reduce_mean's order, for rows of a whole packet or more (the loss pass's output_means)
            rows, n_outputs = y_pred.shape
            end = rows * n_outputs - (rows * n_outputs) % packet
            terms = np.empty(n_outputs, y_pred.dtype)
            for b in range(rows):
                for j in range(n_outputs):
                    terms[j] = term(y_true[b, j], y_pred[b, j], threshold, lane_of(b * n_outputs + j, end, packet))
                per_sample[b] = sample(inner_sum(terms) / cast(n_outputs, y_pred))

        output_means.__name__ = output_means.__qualname__ = f"{rule.name}_output_means"
        output_means = _jit(output_means)

        def metric_pass(y_true, y_pred, threshold, per_sample, packet):
            rows, n_outputs = y_pred.shape
            if packet and n_outputs >= packet:
                output_means(y_true, y_pred, threshold, per_sample, packet)
            else:
                end = rows * n_outputs - (rows * n_outputs) % packet if packet else 0
                for b in range(rows):
                    acc = cast(0, y_pred)
                    for j in range(n_outputs):
                        t = term(y_true[b, j], y_pred[b, j], threshold, lane_of(b * n_outputs + j, end, packet))
                        acc = t if j == 0 else acc + t
                    per_sample[b] = sample(acc / cast(n_outputs, y_pred))

    metric_pass.__name__ = metric_pass.__qualname__ = f"{rule.name}_pass"
    return _inline(metric_pass)


_METRIC_PASSES = [_metric_pass_for(rule) for rule in metric_table.METRICS]
_LINEAR = activations.LINEAR.id


def _metric_pass(metric, y_true, y_pred, threshold, per_sample, packet):
    """Compiled code only: the per-sample pass of metric ``metric`` (an id); ``packet`` as the loss pass's."""


@overload(_metric_pass, inline="always", jit_options={"cache": True, "error_model": "numpy"})
def _metric_pass_numba(metric, y_true, y_pred, threshold, per_sample, packet):
    return switch("metric_pass", _METRIC_PASSES, ["y_true", "y_pred", "threshold", "per_sample", "packet"], "metric")


@_inline
def _accumulate_metrics(profile, metrics, fused, y_true, y_pred, weights, predictions, per_sample, sums):
    """Keras's ``Mean`` per metric: ``sums[k] += [fl(sum_b m_b), B]``, weighted: ``[fl(sum_b m_b w_b), fl(sum_b w_b)]``.

    The metrics read ``metrics.activation`` of ``y_pred``, evaluated into ``predictions`` when it is not linear
    (``fused``: as after the output layer's bias; without one, unfused).
    """
    if metrics.ids.shape[0] > 0 and metrics.activation != _LINEAR:
        for b in range(y_pred.shape[0]):
            for j in range(y_pred.shape[1]):
                predictions[b, j] = y_pred[b, j]
        if fused:
            _activate(profile, metrics.activation, predictions, 0.0, 0.0, 0.0)
        else:
            _activate_unfused(profile, metrics.activation, predictions, 0.0, 0.0, 0.0)
        y_pred = predictions
    packet = _packet_width(profile, y_pred)
    for k in range(metrics.ids.shape[0]):
        _metric_pass(metrics.ids[k], y_true, y_pred, metrics.thresholds[k], per_sample, packet)
        if metrics.weighted[k]:
            for b in range(per_sample.shape[0]):
                per_sample[b] = per_sample[b] * weights[b]
            sums[k, 0] = sums[k, 0] + _sum_vector(profile, per_sample)
            sums[k, 1] = sums[k, 1] + _sum_vector(profile, weights)
        else:
            sums[k, 0] = sums[k, 0] + _sum_vector(profile, per_sample)
            sums[k, 1] = sums[k, 1] + cast(y_pred.shape[0], y_pred)


# --- views, made once per call: creating a view costs ~25 ns of reference counting ---


@_jit
def _parameter_views(params, layout):
    """Per layer, the kernel (n_in, n_out) and bias (n_out,; empty without a bias) as views into the flat array."""
    kernels = [params[0:1].reshape((1, 1))]
    biases = [params[0:1]]
    kernels.clear()
    biases.clear()
    for layer in range(layout.shape[0]):
        row = layout[layer]
        kernels.append(params[row.kernel : row.kernel + row.n_in * row.n_out].reshape((row.n_in, row.n_out)))
        biases.append(params[row.bias : row.bias + row.n_out * row.use_bias])
    return kernels, biases


@_jit
def _workspace(rows, n_features, layout, dtype_like):
    """Buffers for one batch of ``rows`` samples: inputs, targets, per layer its output and dL/d(output), and its
    pre-activation (filled only where the activation's gradient reads it), and the rest."""
    n_layers = layout.shape[0]
    inputs = np.empty((rows, n_features), dtype=dtype_like.dtype)
    targets = np.empty((rows, layout[n_layers - 1].n_out), dtype=dtype_like.dtype)
    outputs = [inputs]
    deltas = [inputs]
    pre_activations = [inputs]
    outputs.clear()
    deltas.clear()
    pre_activations.clear()
    for layer in range(n_layers):
        outputs.append(np.empty((rows, layout[layer].n_out), dtype=dtype_like.dtype))
        deltas.append(np.empty((rows, layout[layer].n_out), dtype=dtype_like.dtype))
        width = layout[layer].n_out if _reads_input(layout[layer].activation) else 0
        pre_activations.append(np.empty((rows, width), dtype=dtype_like.dtype))
    per_sample = np.empty(rows, dtype=dtype_like.dtype)
    weights = np.empty(rows, dtype=dtype_like.dtype)
    predictions = np.empty_like(targets)  # the metrics' view of the output, when the loss reads logits
    return inputs, targets, outputs, deltas, per_sample, weights, predictions, pre_activations


# --- one batch ----------------------------------------------------------------------


@_inline
def _forward(profile, caches, inputs, kernels, biases, layout, outputs, pre_activations):
    """Every layer's output for one batch, into ``outputs[layer]`` (and its pre-activation where the gradient reads
    it); returns the last."""
    for layer in range(layout.shape[0]):
        output = outputs[layer]  # read once: each read of a list item is reference counted
        row = layout[layer]
        if row.use_bias:
            _dense(profile, caches, inputs, kernels[layer], biases[layer], output)
        else:
            _matmul(profile, caches, inputs, kernels[layer], output)
        if _reads_input(row.activation):
            _copy_rows(output, 0, pre_activations[layer])
        if row.use_bias:
            _activate(profile, row.activation, output, row.activation_p0, row.activation_p1, row.activation_p2)
        else:
            _activate_unfused(profile, row.activation, output, row.activation_p0, row.activation_p1,
                              row.activation_p2)
        inputs = output
    return inputs


@_inline
def _batch_loss(profile, loss, y_true, y_pred, weights, per_sample, delta, with_gradient):
    """Keras's batch loss: the reduction ``loss.reduction`` of weight * per-sample mean over outputs (by default / B).

    ``loss`` is a :class:`gdcore._contract.LossRule`. With ``with_gradient`` (a constant), the same pass also fills
    ``delta`` = dL/d(y_pred); training uses it only if the loss is finite.
    """
    packet = _packet_width(profile, y_pred)
    rows = cast(y_pred.shape[0], y_pred)
    reduction = loss.reduction
    weight_total = _sum_vector(profile, weights) if reduction == _MEAN_WITH_SAMPLE_WEIGHT else rows
    inverse = losses.gradient_scale(rows, weight_total, reduction)
    _loss_pass(loss.id, y_true, y_pred, weights, inverse, per_sample, delta, with_gradient, packet)
    return losses.reduce_batch(_sum_vector(profile, per_sample), rows, weight_total, reduction)


_MEAN_WITH_SAMPLE_WEIGHT = losses.MEAN_WITH_SAMPLE_WEIGHT


@_inline
def _penalty(profile, values, l1, l2, scratch):
    """``(0 + l1 * sum|x|) + l2 * sum(x*x)`` of the flat tensor ``values`` (:func:`gdcore.regularizers.penalty`)."""
    n = values.shape[0]
    total = cast(0, values)
    if l1 != 0:
        for i in range(n):
            scratch[i] = np.abs(values[i])
        total = total + cast(l1, values) * _sum_vector(profile, scratch[:n])
    if l2 != 0:
        for i in range(n):
            scratch[i] = values[i] * values[i]
        total = total + cast(l2, values) * _sum_vector(profile, scratch[:n])
    return total


@_inline
def _total_loss(profile, data_loss, params, layout, scratch, terms, outputs):
    """Keras's ``compute_loss``: ``sum([data_loss, p_1, ..., p_k])`` (:func:`gdcore.regularizers.total_loss`):
    the activity penalties of ``outputs`` first, then the weight penalties."""
    terms[0] = data_loss
    k = 1
    for layer in range(layout.shape[0]):
        row = layout[layer]
        if row.activity_regularized:
            y = outputs[layer]
            total = _penalty(profile, y.reshape(y.shape[0] * y.shape[1]), row.activity_l1, row.activity_l2, scratch)
            terms[k] = total / cast(y.shape[0], y)  # divide_no_nan by the batch size (never 0 here)
            k += 1
    for layer in range(layout.shape[0]):
        row = layout[layer]
        if row.kernel_regularized:
            terms[k] = _penalty(profile, params[row.kernel : row.kernel + row.n_in * row.n_out], row.kernel_l1,
                                row.kernel_l2, scratch)
            k += 1
        if row.use_bias and row.bias_regularized:
            terms[k] = _penalty(profile, params[row.bias : row.bias + row.n_out], row.bias_l1, row.bias_l2, scratch)
            k += 1
    if k == 1:
        return data_loss
    return _sum_vector(profile, terms[:k])


@_inline
def _add_penalty_gradient(params, grads, start, size, l1, l2):
    """grads += l1 sign(x) + l2 (x * 2), the terms present (:func:`gdcore.regularizers.penalty_gradient`)."""
    c1 = cast(l1, params)
    c2 = cast(l2, params)
    two = cast(2, params)
    for i in range(start, start + size):
        x = params[i]
        if l1 != 0 and l2 != 0:
            grads[i] = grads[i] + (c1 * np.sign(x) + c2 * (x * two))
        elif l1 != 0:
            grads[i] = grads[i] + c1 * np.sign(x)
        elif l2 != 0:
            grads[i] = grads[i] + c2 * (x * two)


@_inline
def _add_penalty_gradients(params, grads, layout):
    """Every regularized tensor's penalty gradient added to its data gradient (:func:`gdcore.regularizers.add_gradients`)."""
    for layer in range(layout.shape[0]):
        row = layout[layer]
        if row.kernel_regularized:
            _add_penalty_gradient(params, grads, row.kernel, row.n_in * row.n_out, row.kernel_l1, row.kernel_l2)
        if row.use_bias and row.bias_regularized:
            _add_penalty_gradient(params, grads, row.bias, row.n_out, row.bias_l1, row.bias_l2)


@_inline
def _project(profile, w, kind, axis, min_value, max_value, rate, squares, norms):
    """``w <- constraint(w)`` in place, a 2-D view (:func:`gdcore.constraints.project`); ``squares``/``norms``: scratch."""
    rows, cols = w.shape
    if kind == constraints.NON_NEG:
        packet = _packet_width(profile, w)
        packed = rows * cols - (rows * cols) % packet if packet else 0
        for i in range(rows):
            for j in range(cols):
                w[i, j] = constraints.projected(kind, w[i, j], w[i, j], min_value, max_value, rate,
                                                i * cols + j < packed)
        return
    for i in range(rows):
        for j in range(cols):
            squares[i * cols + j] = w[i, j] * w[i, j]
    if axis == constraints.OVER_ALL or (axis == constraints.OVER_ROWS and cols == 1):
        norms[0] = np.sqrt(_sum_vector(profile, squares[: rows * cols]))
    elif axis == constraints.OVER_ROWS:
        _reduce_sum_rows(profile, squares[: rows * cols].reshape((rows, cols)), norms[:cols])
        for j in range(cols):
            norms[j] = np.sqrt(norms[j])
    else:
        for i in range(rows):
            norms[i] = np.sqrt(_sum_vector(profile, squares[i * cols : (i + 1) * cols]))
    for i in range(rows):
        for j in range(cols):
            n = norms[0] if axis == constraints.OVER_ALL or (axis == constraints.OVER_ROWS and cols == 1) else \
                norms[j] if axis == constraints.OVER_ROWS else norms[i]
            w[i, j] = constraints.projected(kind, w[i, j], n, min_value, max_value, rate, False)


@_inline
def _apply_constraints(profile, params, layout, squares, norms):
    """Every constrained tensor projected after the update (:func:`gdcore.constraints.apply`)."""
    for layer in range(layout.shape[0]):
        row = layout[layer]
        if row.kernel_constraint:
            _project(profile, params[row.kernel : row.kernel + row.n_in * row.n_out].reshape((row.n_in, row.n_out)),
                     row.kernel_constraint, row.kernel_constraint_axis, row.kernel_min, row.kernel_max,
                     row.kernel_rate, squares, norms)
        if row.use_bias and row.bias_constraint:
            _project(profile, params[row.bias : row.bias + row.n_out].reshape((1, row.n_out)), row.bias_constraint,
                     constraints.OVER_ALL, row.bias_min, row.bias_max, row.bias_rate, squares, norms)


@_inline
def _optional_passes(layout):
    """Per call: whether any layer has a loss penalty (activity or weight), a weight penalty, a constraint.

    The step skips the passes that have nothing to do: each inlined pass rebinds its array arguments, which costs
    reference counting even when its loop over the layers finds nothing.
    """
    penalized = False
    weight_penalized = False
    constrained = False
    for layer in range(layout.shape[0]):
        row = layout[layer]
        if row.kernel_regularized or (row.use_bias and row.bias_regularized):
            weight_penalized = True
        if row.activity_regularized:
            penalized = True
        if row.kernel_constraint or (row.use_bias and row.bias_constraint):
            constrained = True
    return penalized or weight_penalized, weight_penalized, constrained


@_inline
def _add_activity_gradient(delta, y, l1, l2, output_layer):
    """delta plus fl(1/B * l1) sign(y) and fl(1/B * l2) (y * 2), the terms present, added in
    :func:`gdcore.regularizers.add_activity_gradient`'s order."""
    scale = cast(1, y) / cast(y.shape[0], y)
    c1 = scale * cast(l1, y)
    c2 = scale * cast(l2, y)
    two = cast(2, y)
    for b in range(y.shape[0]):
        for j in range(y.shape[1]):
            if l1 != 0 and l2 != 0:
                t1 = c1 * np.sign(y[b, j])
                t2 = c2 * (y[b, j] * two)
                delta[b, j] = (delta[b, j] + t1) + t2 if output_layer else delta[b, j] + (t1 + t2)
            elif l1 != 0:
                delta[b, j] = delta[b, j] + c1 * np.sign(y[b, j])
            elif l2 != 0:
                delta[b, j] = delta[b, j] + c2 * (y[b, j] * two)


@_inline
def _backward(profile, caches, inputs, kernels, layout, outputs, pre_activations, deltas, kernel_grads, bias_grads):
    """Fill the gradients from ``deltas[-1]`` = dL/d(y_pred); ``deltas`` are overwritten."""
    for layer in range(layout.shape[0] - 1, -1, -1):
        delta = deltas[layer]
        if layout[layer].activity_regularized:
            _add_activity_gradient(delta, outputs[layer], layout[layer].activity_l1, layout[layer].activity_l2,
                                   layer == layout.shape[0] - 1)
        row = layout[layer]
        operand = pre_activations[layer] if _reads_input(row.activation) else outputs[layer]
        _activation_grad(profile, row.activation, operand, delta, row.activation_p0, row.activation_p1,
                         row.activation_p2)
        layer_inputs = outputs[layer - 1] if layer > 0 else inputs
        _matmul_grad_kernel(profile, caches, layer_inputs, delta, kernel_grads[layer])
        if layout[layer].use_bias:
            _sum_columns(profile, delta, bias_grads[layer])
        if layer > 0:
            _matmul_grad_input(profile, caches, delta, kernels[layer], deltas[layer - 1])


# --- whole runs ----------------------------------------------------------------------


@_jit
def permutations(seeds, n):
    """One permutation of ``range(n)`` per entry of ``seeds`` (uint64), as an array (len(seeds), n).

    Fisher-Yates: position i swaps with :func:`fisher_yates_partner`, whose
    draw is the top 53 bits of the i-th output of a SplitMix64 stream started
    at the row's seed. The model draws one seed per epoch from its NumPy
    generator, so a seed fixes every epoch's order, and drawing epochs one at
    a time or many at once gives the same orders. (:func:`permutations_python`
    runs the same functions without compiling.)
    """
    orders = np.empty((seeds.shape[0], n), dtype=np.int64)
    partner = np.empty(max(n - 1, 0), dtype=np.int64)
    for epoch in range(seeds.shape[0]):
        for i in range(n - 1):
            partner[i] = fisher_yates_partner(seeds[epoch], np.uint64(i), n)
        swap_in_turn(orders[epoch], partner)
    return orders


def permutations_python(seeds, n):
    """:func:`permutations` in Python, the partners drawn as one array per epoch: the same orders, nothing compiled."""
    orders = np.empty((len(seeds), n), dtype=np.int64)
    positions = np.arange(max(n - 1, 0), dtype=np.uint64)
    for epoch, seed in enumerate(np.asarray(seeds, dtype=np.uint64)):
        swap_in_turn(orders[epoch], fisher_yates_partner(seed, positions, n).tolist())
    return orders


@jitable
def fisher_yates_partner(seed, i, n):
    """The position that position ``i`` (uint64, a scalar or an array) swaps with: ``i + floor(u_i * (n - i))``.

    u_i in [0, 1) is the top 53 bits of SplitMix64's i-th output from ``seed``;
    the i-th output depends only on ``seed + (i + 1) * gamma``.
    """
    bits = _splitmix64_output(seed + (i + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15))
    return np.int64(i) + np.int64(np.float64(bits >> np.uint64(11)) * _TWO_TO_MINUS_53 * (n - i))


@jitable
def swap_in_turn(order, partner):
    """order <- range(len(order)), then swap position i with partner[i] for i = 0, 1, ..."""
    for i in range(len(order)):
        order[i] = i
    for i in range(len(partner)):
        j = partner[i]
        order[i], order[j] = order[j], order[i]


_TWO_TO_MINUS_53 = 2.0 ** -53


@jitable
def _splitmix64_output(z):
    """SplitMix64's output function (Steele, Lea and Flood 2014) of the state ``z`` (uint64, a scalar or an array)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@_inline
def _gather(x, y, sample_weight, order, start, inputs, targets, weights):
    """The batch's rows, contiguous: inputs[b] <- x[order[start + b]], targets[b] <- y[order[start + b]]."""
    # One feature or one target copied without an inner loop: LLVM prepares a vectorised inner loop for each
    # row, which made a gather of 20 one-column rows take about three times as long.
    one_input = x.shape[1] == 1
    one_target = y.shape[1] == 1
    for b in range(inputs.shape[0]):
        row = order[start + b]
        weights[b] = sample_weight[row]
        if one_input:
            inputs[b, 0] = x[row, 0]
        else:
            for j in range(x.shape[1]):
                inputs[b, j] = x[row, j]
        if one_target:
            targets[b, 0] = y[row, 0]
        else:
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
def _evaluate_loop(profile, caches, batches, network, loss, metrics, sums):
    """Keras's ``evaluate``: adds the loss metric (batch losses, batch-size weighted) and the metrics into ``sums``."""
    literally(profile)
    x, y, batch_size = batches.x, batches.y, batches.batch_size
    layout = network.layout
    n = x.shape[0]
    kernels, biases = _parameter_views(network.params, layout)
    full = _workspace(min(batch_size, n), x.shape[1], layout, x)
    last = _workspace(n % batch_size if n % batch_size else batch_size, x.shape[1], layout, x)
    metric_sums = sums[1:]
    widest = 1
    for layer in range(layout.shape[0]):
        widest = max(widest, layout[layer].n_out)
    scratch = np.empty(max(network.params.shape[0], min(batch_size, n) * widest), dtype=x.dtype)
    terms = np.empty(1 + 3 * layout.shape[0], dtype=x.dtype)
    for start in range(0, n, batch_size):
        inputs, targets, outputs, deltas, per_sample, weights, predictions, pre_activations = (
            full if start + batch_size <= n else last)
        _copy_rows(x, start, inputs)
        _copy_rows(y, start, targets)
        for b in range(weights.shape[0]):
            weights[b] = batches.sample_weight[start + b]
        y_pred = _forward(profile, caches, inputs, kernels, biases, layout, outputs, pre_activations)
        batch = _batch_loss(profile, loss, targets, y_pred, weights, per_sample, deltas[layout.shape[0] - 1], False)
        batch = _total_loss(profile, batch, network.params, layout, scratch, terms, outputs)
        sums[0, 0] = sums[0, 0] + batch * cast(inputs.shape[0], x)
        sums[0, 1] = sums[0, 1] + cast(inputs.shape[0], x)
        _accumulate_metrics(profile, metrics, layout[layout.shape[0] - 1].use_bias, targets, y_pred, weights, predictions,
                            per_sample, metric_sums)


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
        inputs, _, outputs, _, _, _, _, pre_activations = full if start + batch_size <= n else last
        _copy_rows(x, start, inputs)
        y_pred = _forward(profile, caches, inputs, kernels, biases, layout, outputs, pre_activations)
        for b in range(y_pred.shape[0]):
            for j in range(y_pred.shape[1]):
                result[start + b, j] = y_pred[b, j]
    return result


@_jit
def _fit_loop(profile, caches, epochs, network, loss, metrics, optimizer, log, window):
    """Train on ``epochs.orders`` within ``window`` (contract: :mod:`gdcore._contract`)."""
    literally(profile)
    x, y, orders, batch_size = epochs.x, epochs.y, epochs.orders, epochs.batch_size
    params, layout, hyper, slots, lanes = network.params, network.layout, optimizer.hyper, optimizer.slots, optimizer.lanes
    iterations, options, sample_weight = optimizer.iterations, optimizer.options, epochs.sample_weight
    batch_loss_record, batch_metrics_record = window.batch_loss, window.batch_metrics
    n = x.shape[0]
    grads = np.zeros_like(params)
    kernels, biases = _parameter_views(params, layout)
    kernel_grads, bias_grads = _parameter_views(grads, layout)
    full = _workspace(min(batch_size, n), x.shape[1], layout, x)
    last = _workspace(n % batch_size if n % batch_size else batch_size, x.shape[1], layout, x)
    n_full = n // batch_size
    n_batches = n_full + (1 if n % batch_size else 0)
    n_layers = layout.shape[0]
    n_metrics = metrics.ids.shape[0]
    metric_sums = np.zeros((n_metrics, 2), dtype=x.dtype)
    val_sums = np.zeros((1 + n_metrics, 2), dtype=x.dtype)
    terms = np.empty(1 + 3 * n_layers, dtype=x.dtype)  # the data loss and each penalty
    widest = 1
    for layer in range(n_layers):
        widest = max(widest, layout[layer].n_in, layout[layer].n_out)
    norms = np.empty(widest, dtype=x.dtype)  # a constrained tensor's norms
    # |x| or x * x of a regularized tensor or of a batch's activity, the squares of a constrained tensor
    scratch = np.empty(max(params.shape[0], min(batch_size, n) * widest), dtype=x.dtype)
    penalized, weight_penalized, constrained = _optional_passes(layout)
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
            for k in range(n_metrics):
                metric_sums[k, 0] = cast(0, x)
                metric_sums[k, 1] = cast(0, x)
        else:
            total = window.running[0]
            count = window.running[1]
            for k in range(n_metrics):
                metric_sums[k, 0] = window.metric_running[k, 0]
                metric_sums[k, 1] = window.metric_running[k, 1]
        # The last batch may be partial: it has buffers of its own (one call site keeps the compile small). They are
        # bound once per epoch and once more for that batch, not chosen per step: binding eight buffers costs
        # their reference counts.
        inputs, targets, outputs, deltas, per_sample, weights, predictions, pre_activations = full
        for batch_index in range(first, n_batches):
            if batch_index == n_full:
                inputs, targets, outputs, deltas, per_sample, weights, predictions, pre_activations = last
            rows = cast(inputs.shape[0], x)
            _gather(x, y, sample_weight, order, batch_index * batch_size, inputs, targets, weights)
            y_pred = _forward(profile, caches, inputs, kernels, biases, layout, outputs, pre_activations)
            batch = _batch_loss(profile, loss, targets, y_pred, weights, per_sample, deltas[n_layers - 1], True)
            if penalized:
                batch = _total_loss(profile, batch, params, layout, scratch, terms, outputs)
            if not np.isfinite(batch):
                return _restore(window, params, slots, _FAILURE_LOSS), epoch, steps, batch_index
            if n_metrics > 0:  # the pre-update predictions
                _accumulate_metrics(profile, metrics, layout[n_layers - 1].use_bias, targets, y_pred, weights,
                                    predictions, per_sample, metric_sums)
            _backward(profile, caches, inputs, kernels, layout, outputs, pre_activations, deltas, kernel_grads,
                      bias_grads)
            if weight_penalized:
                _add_penalty_gradients(params, grads, layout)
            optimizers.apply_update(hyper, params, grads, slots, iterations, lanes, options)
            if constrained:
                _apply_constraints(profile, params, layout, scratch, norms)
            if not _all_finite_state(params, slots):
                return _restore(window, params, slots, _FAILURE_UPDATE), epoch, steps, batch_index
            # Keras's loss metric: a batch-size-weighted running mean of the pre-update batch losses.
            total = total + batch * rows
            count = count + rows
            iterations += 1
            if steps < batch_loss_record.shape[0]:
                batch_loss_record[steps] = total / count
                for k in range(n_metrics):
                    batch_metrics_record[steps, k, 0] = metric_sums[k, 0]
                    batch_metrics_record[steps, k, 1] = metric_sums[k, 1]
            steps += 1
            if steps == window.max_steps and batch_index + 1 < n_batches:
                window.running[0] = total
                window.running[1] = count
                for k in range(n_metrics):
                    window.metric_running[k, 0] = metric_sums[k, 0]
                    window.metric_running[k, 1] = metric_sums[k, 1]
                return iterations, epoch, steps, -1
        log.loss[epoch] = total / count
        for k in range(n_metrics):
            log.metrics[epoch, k, 0] = metric_sums[k, 0]
            log.metrics[epoch, k, 1] = metric_sums[k, 1]
        if epochs.val.x.shape[0] > 0:
            for k in range(n_metrics + 1):
                val_sums[k, 0] = cast(0, x)
                val_sums[k, 1] = cast(0, x)
            _evaluate_loop(profile, caches, epochs.val, network, loss, metrics, val_sums)
            log.val_loss[epoch] = val_sums[0, 0] / val_sums[0, 1]
            for k in range(n_metrics):
                log.val_metrics[epoch, k, 0] = val_sums[k + 1, 0]
                log.val_metrics[epoch, k, 1] = val_sums[k + 1, 1]
            if not np.isfinite(log.val_loss[epoch]):
                return _restore(window, params, slots, _FAILURE_VALIDATION), epoch, steps, n_batches
        if steps >= window.max_steps:
            return iterations, epoch + 1, steps, -1
    return iterations, orders.shape[0], steps, -1


_FAILURE_LOSS, _FAILURE_UPDATE, _FAILURE_VALIDATION = FAILURE_LOSS, FAILURE_UPDATE, FAILURE_VALIDATION


@_inline
def _all_finite_state(params, slots):
    """Whether every weight and every optimizer state (slots, shape (slots, parameters)) is finite."""
    bad = 0
    for i in range(params.shape[0]):
        bad += not np.isfinite(params[i])
    for k in range(slots.shape[0]):  # by rows: a reshape to 1-D would call Numba's reshape helper every step
        for i in range(slots.shape[1]):
            bad += not np.isfinite(slots[k, i])
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
#
# The arguments cross into compiled code as plain tuples, named again inside (free once
# compiled): Numba types a named tuple's fields in Python at every call, a plain tuple's in
# C (a fit's eight arguments: ~26 us as named tuples, ~5 us as plain ones).

assert Epochs._fields.index("val") == 4 and OptimizerState._fields[0] == "hyper" and \
    OptimizerState._fields[-1] == "options", "plain_fit_arguments and _named_* follow the contract's field order"


def plain_fit_arguments(profile, epochs, network, loss, metrics, optimizer, log, window) -> tuple:
    """A fit entry point's arguments: ``profile.caches`` and the named tuples as plain (nested) tuples."""
    return (tuple(profile.caches), (*epochs[:4], tuple(epochs.val), epochs.sample_weight), tuple(network),
            tuple(loss), tuple(metrics), (tuple(optimizer.hyper), *optimizer[1:4], tuple(optimizer.options)),
            tuple(log), tuple(window))


def plain_evaluate_arguments(profile, batches, network, loss, metrics, sums) -> tuple:
    return tuple(profile.caches), tuple(batches), tuple(network), tuple(loss), tuple(metrics), sums


def plain_predict_arguments(profile, batches, network) -> tuple:
    return tuple(profile.caches), tuple(batches), tuple(network)


@_inline
def _named_epochs(t):
    return Epochs(t[0], t[1], t[2], t[3], Batches(*t[4]), t[5])


@_inline
def _named_optimizer(t):
    return OptimizerState(optimizers.Hyperparameters(*t[0]), t[1], t[2], t[3], optimizers.Options(*t[4]))


def _entries(profile_id: int, tag: str):
    def fit(caches, epochs, network, loss, metrics, optimizer, log, window):
        return _fit_loop(profile_id, Caches(*caches), _named_epochs(epochs), Network(*network), LossRule(*loss),
                         Metrics(*metrics), _named_optimizer(optimizer), Log(*log), Window(*window))

    def evaluate(caches, batches, network, loss, metrics, sums):
        return _evaluate_loop(profile_id, Caches(*caches), Batches(*batches), Network(*network), LossRule(*loss),
                              Metrics(*metrics), sums)

    def predict(caches, batches, network):
        return _predict_loop(profile_id, Caches(*caches), Batches(*batches), Network(*network))

    compiled = []
    for function in (fit, evaluate, predict):
        function.__name__ = function.__qualname__ = f"_{function.__name__}_{tag}"
        compiled.append(_jit(function))
    return tuple(compiled)


_ENTRIES = {profile_id: _entries(profile_id, name.replace("/", "_").replace("-", "_"))
            for name, profile_id in PROFILE_IDS.items()}


def fit_loop(profile, epochs: Epochs, network: Network, loss: LossRule, metrics: np.ndarray, optimizer: OptimizerState,
             log: Log, window: Window, on_step=None):
    """Train on ``epochs.orders`` within ``window`` (:mod:`gdcore._contract`); ``profile``: a :class:`gdcore.numerics.Profile`."""
    if on_step is not None:
        raise ValueError("the compiled engine does not call on_step; use engine='numpy' to observe every step")
    return _ENTRIES[profile.id][0](*plain_fit_arguments(profile, epochs, network, loss, metrics, optimizer, log, window))


def evaluate_loop(profile, batches: Batches, network: Network, loss: LossRule, metrics: np.ndarray, sums: np.ndarray):
    """Keras's ``evaluate`` loss and metrics, added into ``sums``; see ``_evaluate_loop``."""
    _ENTRIES[profile.id][1](*plain_evaluate_arguments(profile, batches, network, loss, metrics, sums))


def predict_loop(profile, batches: Batches, network: Network):
    """Outputs in batches; see ``_predict_loop``."""
    return _ENTRIES[profile.id][2](*plain_predict_arguments(profile, batches, network))
