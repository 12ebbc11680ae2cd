"""The engine contract: what ``fit``/``evaluate``/``predict`` hand either engine, named once.

Both engines (:mod:`gdcore._numpy_engine`, :mod:`gdcore._numba_engine`) take
these named tuples; Numba compiles a named tuple's fields to plain loads, so
the compiled loop reads ``network.layout[l].n_out`` where it once read a
column by position.

``LAYOUT`` (one record per Dense layer, a NumPy record array)
    ``n_in``, ``n_out`` (the kernel is (n_in, n_out), row-major), ``activation``
    (the id of an entry of :data:`gdcore.activations.ACTIVATIONS`),
    ``kernel`` and ``bias`` (offsets of the kernel and bias in the flat
    parameter array), ``use_bias`` (1, or 0 for ``Dense(use_bias=False)``:
    the layer has no bias at all, as in Keras, so ``bias`` is where the kernel
    ends and the bias takes no room; the forward pass is the product alone),
    ``kernel_regularized``/``bias_regularized`` (1 where the tensor's penalty
    is part of the loss: a regularizer on a trainable layer) with its factors
    ``kernel_l1``, ``kernel_l2``, ``bias_l1``, ``bias_l2`` (float32 values held
    as float64; 0 leaves the term out; :mod:`gdcore.regularizers`),
    ``kernel_constraint``/``bias_constraint`` (the kind of the tensor's
    constraint on a trainable layer, 0 for none; :mod:`gdcore.constraints`)
    with ``kernel_constraint_axis`` (the axis code of the kernel's norms; a
    bias's norm is over all of it) and the bounds ``kernel_min``,
    ``kernel_max``, ``kernel_rate``, ``bias_min``, ``bias_max``, ``bias_rate``,
    and ``activity_regularized`` with ``activity_l1``, ``activity_l2`` (the
    layer's ``activity_regularizer``: a penalty on its output, divided by the
    batch size, :mod:`gdcore.regularizers`), and ``activation_p0``,
    ``activation_p1``, ``activation_p2`` (the parameters of an activation
    entry that has them, as ``Activation.parameter_values`` gives them; 0
    otherwise).
    :func:`weight_tensors` lists a layout's tensors in Keras's order.
:class:`Network`
    ``params`` (every weight, flat, in ``get_weights()`` order) and ``layout``.
:class:`Batches`
    Data visited in order, in batches: ``x``, ``y`` (for ``predict`` an
    empty (0, 0) array), ``batch_size``, ``sample_weight`` (one weight per
    row, model dtype; ones when none is given: a weight of 1 changes no bit).
:class:`Epochs`
    What one training call visits: ``x``, ``y``, ``orders`` (one row of sample
    indices per epoch), ``batch_size``, the validation data ``val`` (a
    :class:`Batches`; no rows for none) and ``sample_weight`` (per row of ``x``).
    The loss of a batch is the loss's reduction of the weighted per-sample
    losses, by default Keras's ``sum_over_batch_size``, :math:`\\sum_b w_b \\ell_b / B`
    (:func:`gdcore.losses.reduce_batch`), plus the penalties of
    the layout's regularized tensors (``sum([data loss, p_1, ..., p_k])``,
    :mod:`gdcore.regularizers`; their gradients join the data gradients);
    the metrics are unweighted, as Keras's ``compile(metrics=...)`` are.
    Each update is followed by the layout's constraints (:mod:`gdcore.constraints`).
:class:`OptimizerState`
    ``hyper`` (the rule's named tuple of constants, :mod:`gdcore.optimizers`:
    its type selects the rule), ``slots`` (state, shape (slots, parameters),
    updated in place), ``iterations`` (updates so far), ``lanes`` (the
    profile's :meth:`~gdcore.numerics.Profile.update_lanes`) and ``options``
    (:class:`gdcore.optimizers.Options`: Keras's clipping, weight decay and
    the learning rate of each update; None: none).
:class:`Log`
    Filled per epoch: ``loss`` (Keras's ``history["loss"]``) and ``val_loss``;
    ``metrics`` and ``val_metrics``, shape (epochs, metrics, 2), the
    ``[total, count]`` of each compiled metric (its value is the rule's
    ``result(total, count)``, :mod:`gdcore.metrics`).

``metrics`` (:class:`Metrics`) holds the ids of the compiled metrics' entries
of :data:`gdcore.metrics.METRICS`, in ``compile`` order, with their
thresholds; each is accumulated over the epoch's batches from the pre-update
predictions (after ``metrics.activation``), in the model dtype.

``evaluate_loop(profile, batches, network, loss, metrics, sums)`` adds one
pass over ``batches`` into ``sums`` (shape (1 + metrics, 2), model dtype):
row 0 the loss metric's ``[total, count]`` (Keras's ``evaluate`` loss is
``total / count``), row 1 + k metric k's.

``fit_loop(profile, epochs, network, loss, metrics, optimizer, log, window, on_step=None)``
returns ``(iterations, epochs_completed, steps, failed_batch)``: the updates
done so far, the epochs of ``epochs.orders`` completed (an epoch cut by the
:class:`Window` is not), the steps this call ran; a batch whose loss is not
finite stops training and puts the parameters, the optimizer state and the
iteration count back to the start of its epoch (``failed_batch`` is its index,
-1 otherwise); so does an update that leaves a weight or optimizer state
non-finite, and a non-finite validation loss (``failed_batch`` is then the
epoch's number of batches). ``window.failure[0]`` says which. ``loss`` is a :class:`LossRule`:
the id of an entry of :data:`gdcore.losses.LOSSES` and its reduction. ``on_step`` (NumPy engine only) is called after
every update with a :class:`Step`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

LAYOUT = np.dtype([("n_in", np.int64), ("n_out", np.int64), ("activation", np.int64), ("kernel", np.int64),
                   ("bias", np.int64), ("use_bias", np.int64), ("kernel_regularized", np.int64),
                   ("kernel_l1", np.float64), ("kernel_l2", np.float64), ("bias_regularized", np.int64),
                   ("bias_l1", np.float64), ("bias_l2", np.float64), ("kernel_constraint", np.int64),
                   ("kernel_constraint_axis", np.int64), ("kernel_min", np.float64), ("kernel_max", np.float64),
                   ("kernel_rate", np.float64), ("bias_constraint", np.int64), ("bias_min", np.float64),
                   ("bias_max", np.float64), ("bias_rate", np.float64), ("activity_regularized", np.int64),
                   ("activity_l1", np.float64), ("activity_l2", np.float64), ("activation_p0", np.float64),
                   ("activation_p1", np.float64), ("activation_p2", np.float64)],
                  align=True)


def layout(rows) -> np.recarray:
    """A layout record array from ``(n_in, n_out, activation, kernel_offset, bias_offset, use_bias)`` rows
    (optionally followed by the regularizer fields; missing ones are 0: no regularizer, no activation parameter)."""
    width = len(LAYOUT.names)
    return np.array([tuple(row) + (0,) * (width - len(row)) for row in rows], dtype=LAYOUT).view(np.recarray)


def weight_tensors(layout) -> list[tuple[int, str, int, tuple]]:
    """``(layer, "kernel" or "bias", start, shape)`` of each weight tensor, Keras's order (a layer's kernel, then its
    bias if it has one): what ``get_weights``, the optimizer's variables and Keras's files list."""
    tensors = []
    # One C call for every field of every row: a record's attribute costs microseconds (each fit lists these).
    for index, (n_in, n_out, _, kernel, bias, use_bias, *_) in enumerate(np.ndarray.tolist(layout)):
        tensors.append((index, "kernel", kernel, (n_in, n_out)))
        if use_bias:
            tensors.append((index, "bias", bias, (n_out,)))
    return tensors


class Network(NamedTuple):
    params: np.ndarray
    layout: np.recarray


class Batches(NamedTuple):
    x: np.ndarray
    y: np.ndarray
    batch_size: int
    sample_weight: np.ndarray


class Epochs(NamedTuple):
    x: np.ndarray
    y: np.ndarray
    orders: np.ndarray
    batch_size: int
    val: Batches
    sample_weight: np.ndarray


class LossRule(NamedTuple):
    """The loss of a run: ``id``, an entry of :data:`gdcore.losses.LOSSES`, and ``reduction``, Keras's reduction of a
    batch (a code of :data:`gdcore.losses.REDUCTION_IDS`: the batch loss is :func:`gdcore.losses.reduce_batch`, each
    weighted per-sample loss's gradient :func:`gdcore.losses.gradient_scale`)."""

    id: int
    reduction: int


class Metrics(NamedTuple):
    """The compiled metrics of a run: rule ids (int64), each rule's threshold (model dtype; read by thresholded
    rules only), whether each is weighted by the sample weights (bool; ``compile(weighted_metrics=...)``), and the
    activation id applied to the predictions before the metrics read them (linear, unless the loss reads the logits
    of the output layer: :func:`gdcore.losses.training_loss`)."""

    ids: np.ndarray
    thresholds: np.ndarray
    weighted: np.ndarray
    activation: int


class OptimizerState(NamedTuple):
    hyper: tuple
    slots: np.ndarray
    iterations: int
    lanes: np.ndarray  # int8 per parameter: how position-dependent operations are evaluated (Profile.update_lanes)
    options: tuple | None = None  # gdcore.optimizers.Options: clipping, weight decay, the learning rate per update


class Log(NamedTuple):
    loss: np.ndarray
    val_loss: np.ndarray
    metrics: np.ndarray  # (epochs, metrics, 2): [total, count] per metric
    val_metrics: np.ndarray


class Window(NamedTuple):
    """Which steps one ``fit_loop`` call runs, and the state that carries over between calls.

    The call starts in ``epochs.orders[0]`` at batch ``start_batch`` and stops
    after ``max_steps`` updates (or at the end of the orders). An epoch cut by
    a window continues in the next call, which passes ``start_batch`` > 0: its
    running loss metric (``running`` = [total, count], model dtype) and its
    snapshot of the epoch start (``saved_params``, ``saved_slots``,
    ``saved_iterations[0]``, restored if a batch diverges) live here.
    ``batch_loss[s]`` receives the running loss after step ``s`` of the call
    (for progress bars and batch callbacks), for ``s < len(batch_loss)``, and
    ``batch_metrics[s]`` the metrics' ``[total, count]`` (``metric_running``
    carries them between calls, as ``running`` carries the loss's);
    ``failure[0]`` says why a call stopped on a non-finite value (``FAILURE_*``).
    """

    start_batch: int
    max_steps: int
    running: np.ndarray
    batch_loss: np.ndarray
    saved_params: np.ndarray
    saved_slots: np.ndarray
    saved_iterations: np.ndarray
    failure: np.ndarray  # int64 (1,): why the call stopped early, FAILURE_* (0: it did not)
    metric_running: np.ndarray  # (metrics, 2)
    batch_metrics: np.ndarray  # (len(batch_loss), metrics, 2)


FAILURE_LOSS = 1  # a batch loss was NaN or infinite (before its update)
FAILURE_UPDATE = 2  # an update made a weight or an optimizer state non-finite
FAILURE_VALIDATION = 3  # the validation loss at the end of an epoch was not finite


class Step(NamedTuple):
    """One update, as the NumPy engine's ``on_step`` hook sees it (arrays are copies)."""

    epoch: int  # 0-based, within this call
    batch: int  # 0-based, within the epoch
    rows: np.ndarray  # the sample indices of the batch
    loss: float  # the batch loss before the update
    before: np.ndarray
    grads: np.ndarray
    after: np.ndarray
