"""``Model`` and ``Sequential``: a chain of Dense layers with Keras's ``compile``/``fit``/``predict``/``evaluate``.

``gdcore.Model(inputs, outputs)`` is Keras's functional API for the networks
gdcore trains: one ``Input``, then Dense layers each called on the one before,
one output. ``gdcore.Sequential([...])`` is the same model built from a list.
Both keep their parameters in one flat array (layers' ``kernel``/``bias`` are
views into it) and hand it to an engine (:mod:`gdcore._contract`).

``fit`` is the epoch driver: it draws each epoch's order, calls the engine on
slices of steps (a whole run in one call when nothing listens; per batch when
a callback has batch hooks; slices of about 0.1 s otherwise, so that progress
bars move and Ctrl-C is answered), runs the callbacks in Keras 3's order and
keeps ``History``, the weights, the optimizer state and ``optimizer.iterations``
consistent with each other at every return, an interrupt included.
"""

from __future__ import annotations

import _signal
import math
import random as pyrandom
import shutil
import signal
import threading
import time
import warnings

import numpy as np

from gdcore import _auto_engine, _contract, _numba_engine, _numpy_engine, activations, config, losses, optimizers
from gdcore import metrics as metrics_module
from gdcore import random as _random
from gdcore._cache import remember
from gdcore._naming import unique_name
from gdcore._validation import as_features, as_targets, positive_int
from gdcore.callbacks import (BATCH_HOOKS, TEST_HOOKS, Callback, CallbackList, History, ProgbarLogger, check,
                              overrides)
from gdcore.layers import ActivationLayer, Dense, InputLayer, KerasTensor
from gdcore.numerics import get_profile

ENGINES = {"auto": _auto_engine, "numba": _numba_engine, "numpy": _numpy_engine}
DTYPES = ("float32", "float64")
# Permutations are drawn for this many samples x epochs at a time, so memory stays bounded.
_ORDER_CHUNK = 1 << 22
# The optimizer's lanes and weight tensors of a layout (Model._optimizer_state), read-only once made.
_LANES: dict = {}
# Target duration of one engine call when something waits for it (a progress bar, Ctrl-C).
_SLICE_SECONDS = 0.1


def _engine_array(array: np.ndarray) -> np.ndarray:
    """``array`` itself if C-contiguous, aligned and writeable, else a copy that is.

    The compiled loops are typed by these flags: a read-only array (pandas's
    ``to_numpy()`` under copy-on-write) would compile a second fit loop.
    """
    flags = array.flags
    if flags.c_contiguous and flags.aligned and flags.writeable:  # the common case, ~20x cheaper than np.require
        return array
    return np.require(array, requirements="CAW")


def check_weights(weights, targets, what: str) -> list[np.ndarray]:
    """``weights`` as float64 arrays matching ``targets``' shapes, finite in the targets' dtype; else a ValueError."""
    if weights is None or isinstance(weights, (str, bytes)) or not hasattr(weights, "__iter__"):
        raise TypeError(f"{what}: set_weights expects a list of arrays, got {type(weights).__name__}")
    weights = list(weights)
    if len(weights) != len(targets):
        raise ValueError(f"{what}: set_weights expected {len(targets)} arrays (kernel and bias per Dense layer), "
                         f"got {len(weights)}")
    arrays = []
    for index, (value, target) in enumerate(zip(weights, targets)):
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{what}: weights[{index}] must be real numbers, got dtype {array.dtype}")
        array = array.astype(np.float64)
        if array.shape != target.shape:
            raise ValueError(f"{what}: weights[{index}] has shape {array.shape}, expected {target.shape}")
        if not np.isfinite(array).all():
            raise ValueError(f"{what}: weights[{index}] contains NaN or inf")
        with np.errstate(over="ignore"):
            if not np.isfinite(array.astype(target.dtype)).all():
                raise ValueError(f"{what}: weights[{index}] has values too large for {target.dtype}")
        arrays.append(array)
    return arrays


class TrainingDivergedWarning(RuntimeWarning):
    """A batch loss became NaN or infinite; training stopped at the last completed epoch."""


_RAN_OUT_OF_DATA = ("Your input ran out of data; interrupting training. Make sure that your dataset or generator can "
                    "generate at least `steps_per_epoch * epochs` batches. You may need to use the `.repeat()` "
                    "function when building your dataset.")


class _Passes:
    """The batches of each epoch of ``fit(steps_per_epoch=...)``, as Keras 3's ``EpochIterator`` hands them out.

    One pass over the data (its order drawn when it starts, as ``fit`` would
    draw an epoch's) serves consecutive epochs of ``steps_per_epoch`` batches;
    an epoch that reaches the pass's end stops there, with Keras's "ran out of
    data" warning when it wanted more, and the next epoch starts a new pass.
    A new ``fit`` starts a new pass.
    """

    def __init__(self, model, n: int, batches: int, batch_size: int, shuffle, steps_per_epoch):
        self.model, self.n, self.batches, self.batch_size = model, n, batches, batch_size
        self.shuffle, self.steps_per_epoch = shuffle, steps_per_epoch
        self.order, self.seen = None, 0

    def next_epoch(self) -> tuple[np.ndarray, int]:
        """The rows of the next epoch, in order, and its number of batches."""
        if self.order is None:
            self.order = self.model._orders(self.n, 1, self.shuffle, self.batch_size)[0]
        left = self.batches - self.seen
        if self.steps_per_epoch > left:
            warnings.warn(_RAN_OUT_OF_DATA, UserWarning, stacklevel=4)
        take = min(self.steps_per_epoch, left)
        rows = self.order[self.seen * self.batch_size : (self.seen + take) * self.batch_size]
        self.seen += take
        if self.seen >= self.batches:
            self.order, self.seen = None, 0
        return rows, take


class _Interrupts:
    """While ``fit`` runs in the main thread, Ctrl-C sets a flag that ``fit`` answers at the next consistent point.

    A second Ctrl-C interrupts at once, as the default handler would.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        # The C-level module: the public one converts every handler to an enum (tens of microseconds per fit).
        if threading.current_thread() is threading.main_thread() and _signal.getsignal(signal.SIGINT) is \
                signal.default_int_handler:
            self._previous = _signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            _signal.signal(signal.SIGINT, self._previous)
        return False


def _set_parameters(layout, index: int, values) -> None:
    """A layer's activation parameters into its layout record (``Activation.parameter_values``)."""
    layout.activation_p0[index], layout.activation_p1[index], layout.activation_p2[index] = values


class Model:
    """A feed-forward network of Dense layers, trained by minibatch gradient descent (Keras's ``keras.Model``).

    Parameters
    ----------
    inputs, outputs : KerasTensor
        The functional API: ``inputs = gdcore.Input(shape=(d,))``, then
        ``outputs = Dense(...)(...)`` called in a chain from it. Models with
        branches, several inputs or several outputs are refused with a message.
    name : str, optional
        Keras's default is ``"functional"`` (``"sequential"`` for Sequential), made unique.
    dtype : {"float32", "float64"}, optional
        Of weights, activations, gradients and the loss metric; default
        :func:`gdcore.config.floatx` (Keras's ``float32``).
    numerics : {"plain", "tensorflow"}, optional
        Summation order of every reduction, see :mod:`gdcore.numerics`;
        default :func:`gdcore.config.numerics` (``"plain"``).
    engine : {"auto", "numba", "numpy"}
        ``"numba"``: the compiled fused loop (fast); ``"numpy"``: the readable
        NumPy step (same bits); ``"auto"`` (the default): the compiled loop once
        it is compiled, and while it is compiled for the first time (in the
        background, a few minutes after an install) small runs on the NumPy
        engine (:mod:`gdcore._auto_engine`).
    seed : int or None
        Seeds gdcore's own generator for unseeded initializers and for
        ``fit(shuffle=True)`` (and selects ``random="gdcore"``).
    random : {"keras", "gdcore"}, optional
        Which random streams the model draws from. ``"keras"`` (the default
        without ``seed``): Keras 3's own, bit for bit (:mod:`gdcore.random`):
        unseeded initializers seeded from Python's ``random`` as each layer is
        created, ``fit``'s shuffle from the global seed of
        :func:`gdcore.utils.set_random_seed` (Keras 3 visits the same
        permutation in every epoch). ``"gdcore"`` (the default with ``seed``):
        a fast stream of gdcore's own, a new permutation every epoch
        (SplitMix64-driven Fisher-Yates). Seeded initializers give Keras's
        values in both.
    """

    _default_name = "functional"

    def __init__(self, inputs=None, outputs=None, name: str | None = None, *, dtype: str | None = None,
                 numerics: str | None = None, engine: str = "auto", seed: int | None = None, random: str | None = None,
                 **kwargs):
        if kwargs:
            raise TypeError(f"Model got unsupported arguments {sorted(kwargs)}")
        self._configure(name, dtype, numerics, engine, seed, random)
        if inputs is None and outputs is None and type(self) is Model:
            raise TypeError("Model(inputs, outputs): give the Input tensor and the output tensor of a chain of layers "
                            "(subclassing Model is not supported); or use gdcore.Sequential([...])")
        if type(self) is Model or inputs is not None or outputs is not None:
            input_layer, layers = _chain(inputs, outputs)
            self._input_layer = input_layer
            self.input_shape = input_layer.shape
            for layer in layers:
                self._adopt(layer)
            self.build(self.input_shape)

    def _configure(self, name, dtype, numerics, engine, seed, random=None):
        dtype = config.floatx() if dtype is None else str(np.dtype(dtype)) if not isinstance(dtype, str) else dtype
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, got {type(name).__name__}")
        self.dtype = np.dtype(dtype)
        self.profile = get_profile(config.numerics() if numerics is None else numerics)
        self.engine = engine
        self.name = name if name is not None else unique_name(self._default_name)
        self.seed = seed
        random = ("gdcore" if seed is not None else "keras") if random is None else random
        if random not in ("keras", "gdcore"):
            raise ValueError(f"random must be 'keras' or 'gdcore', got {random!r}")
        self.random = random
        self._rng = np.random.default_rng(config.model_seed() if seed is None else seed)
        self._input_layer: InputLayer | None = None
        self.input_shape: tuple[int] | None = None
        self.dense_layers: list[Dense] = []
        # Per Dense layer (by position), the activation layer folded into it (Dense.folded holds the same layer).
        self._activation_layers: dict[int, ActivationLayer] = {}
        self.params: np.ndarray | None = None
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: losses.Loss | None = None
        self._metrics: list = []  # (key, Metric) per compiled metric, gdcore.metrics.compile_metrics
        self._metric_weighted: list = []  # per compiled metric, whether it is a weighted metric
        self._run_metrics_memo = None
        self.history: History | None = None
        self.stop_training = False
        self.compiled = False

    # --- structure --------------------------------------------------------------------

    @property
    def layers(self) -> list:
        """The layers, as Keras lists them: a functional model's ``InputLayer`` first, then the Dense layers, each
        followed by the activation layer folded into it, if any."""
        layers = [self._input_layer] if self._input_layer is not None and type(self) is Model else []
        for index, layer in enumerate(self.dense_layers):
            layers.append(layer)
            if index in self._activation_layers:
                layers.append(self._activation_layers[index])
        return layers

    @property
    def _batch_dim(self) -> int | None:
        """The batch dimension of the shapes Keras shows: ``Input(batch_size=...)``, else None."""
        return getattr(self._input_layer, "batch_size", None) if self._input_layer is not None else None

    def get_layer(self, name: str | None = None, index: int | None = None):
        """The layer called ``name`` (or at position ``index`` of :attr:`layers`)."""
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; layers: {', '.join(layer.name for layer in self.layers)}")

    def _adopt(self, layer: Dense | ActivationLayer) -> None:
        if layer._model is not None and layer._model is not self:
            raise ValueError(f"layer {layer.name!r} already belongs to model {layer._model.name!r}: gdcore models do "
                             "not share layers (their weights live in the model); create a new layer")
        if isinstance(layer, ActivationLayer):
            self._fold(layer)
            return
        if layer.input_shape is not None:
            if self.dense_layers or self.input_shape not in (None, layer.input_shape):
                raise ValueError("input_shape may only be given to the first layer, and must agree with the Input")
            self.input_shape = layer.input_shape
        layer._model = self
        self.dense_layers.append(layer)

    def _fold(self, layer: ActivationLayer) -> None:
        """Fold an activation layer into the Dense layer before it, or say which case gdcore does not support."""
        kind = type(layer).__name__
        if not self.dense_layers:
            raise NotImplementedError(f"{kind} layer {layer.name!r} first in the model: gdcore folds an activation "
                                      "layer into the Dense layer before it; put a Dense layer first")
        index = len(self.dense_layers) - 1
        dense = self.dense_layers[index]
        if index in self._activation_layers:
            raise NotImplementedError(f"two activation layers in a row ({self._activation_layers[index].name!r}, "
                                      f"{layer.name!r}): gdcore folds one activation layer into the Dense layer "
                                      "before it")
        if dense.activation is not activations.LINEAR:
            raise NotImplementedError(f"{kind} layer {layer.name!r} after Dense layer {dense.name!r}, whose "
                                      f"activation is {dense.activation.name!r}: gdcore folds an activation layer "
                                      "only into a linear Dense layer")
        if layer.entry().row_wise and dense.units == 1:
            raise ValueError(f"{kind} layer {layer.name!r} applies {layer.entry().name!r} to the one unit of "
                             f"{dense.name!r}: it always outputs 1 (it normalises over the units); use units >= 2")
        layer._model = self
        dense.folded = layer
        self._activation_layers[index] = layer
        if self.params is not None:
            self.layout.activation[index] = layer.entry().id
            _set_parameters(self.layout, index, dense.effective_parameters)

    def build(self, input_shape) -> None:
        """Allocate the flat parameter array and initialise every layer's kernel and bias."""
        if not self.dense_layers:
            raise ValueError("the model has no Dense layer: add one before building")
        shape = tuple(input_shape)
        n_features = positive_int(shape[-1], "input_shape[-1]") if shape else None
        if self.params is not None:
            if n_features != self.input_shape[0]:
                raise ValueError(f"the model is already built for inputs of shape (None, {self.input_shape[0]}); "
                                 f"build({input_shape!r}) asks for {n_features} features")
            return
        self.input_shape = (n_features,)
        rows, offset, n_in = [], 0, n_features
        for layer in self.dense_layers:
            if layer.input_dim not in (None, n_in):
                raise ValueError(f"layer {layer.name!r} takes {layer.input_dim} inputs but gets {n_in}")
            use_bias = int(layer.use_bias)
            rows.append((n_in, layer.units, layer.effective_activation.id, offset, offset + n_in * layer.units,
                         use_bias))
            offset += n_in * layer.units + layer.units * use_bias
            n_in = layer.units
        if offset > 2**31:
            raise ValueError(f"the model would have {offset:,} parameters: more than gdcore allocates (2**31); "
                             "use fewer or smaller layers")
        self.layout = _contract.layout(rows)
        for index, layer in enumerate(self.dense_layers):
            _set_parameters(self.layout, index, layer.effective_parameters)
        self._regularizers_synced = (self.layout, None)  # its option fields are zeros: no options (_sync_regularizers)
        self.params = np.empty(offset, dtype=self.dtype)
        for layer, row in zip(self.dense_layers, self.layout):
            n_in, units = int(row.n_in), int(row.n_out)
            layer.input_dim = n_in
            layer.kernel = self.params[row.kernel : row.bias].reshape(n_in, units)
            stream = self._rng if self.random == "gdcore" else _random.KERAS
            layer.kernel[:] = layer.kernel_initializer((n_in, units), self.dtype, stream)
            if row.use_bias:  # Keras draws no bias (and takes nothing from the stream) for use_bias=False
                layer.bias = self.params[row.bias : row.bias + units]
                layer.bias[:] = layer.bias_initializer((units,), self.dtype, stream)

    @property
    def built(self) -> bool:
        return self.params is not None

    @property
    def network(self) -> _contract.Network:
        """The parameters and layer layout as the engines take them (:mod:`gdcore._contract`)."""
        self._require_built("network")
        self._sync_regularizers()
        return _contract.Network(self.params, self.layout)

    def _sync_regularizers(self) -> None:
        """The layout's regularizer and constraint fields from the layers.

        A frozen layer's weight penalties are not in Keras's ``model.losses`` and its constraints never run (Keras
        constrains the trainable variables it updates); its activity penalty still counts. Written only when a
        layer's options, ``trainable`` or ``use_bias`` changed since the last call (each ``fit`` calls it: writing
        the record fields costs more than the seed's whole compiled training).
        """
        layout = self.layout
        key = tuple((layer.trainable, layer.use_bias,
                     *(None if r is None else r.factors()
                       for r in (layer.kernel_regularizer, layer.bias_regularizer, layer.activity_regularizer)),
                     *(None if c is None else (c.kind, c.axis, c.bounds())
                       for c in (layer.kernel_constraint, layer.bias_constraint)))
                    for layer in self.dense_layers)
        synced = self.__dict__.get("_regularizers_synced")
        if synced is not None and synced[0] is layout and synced[1] == key:
            return
        self._regularizers_synced = (layout, key)
        if synced is not None and synced[0] is layout and synced[1] is None and \
                all(option is None for options in key for option in options[2:]):
            return  # a layout as built (its option fields zero) and still no regularizer or constraint: nothing to write
        for index, layer in enumerate(self.dense_layers):
            options = {}
            for tensor, regularizer in (("kernel", layer.kernel_regularizer), ("bias", layer.bias_regularizer)):
                active = regularizer is not None and layer.trainable and (tensor == "kernel" or layer.use_bias)
                options[f"{tensor}_regularized"] = int(active)
                options[f"{tensor}_l1"], options[f"{tensor}_l2"] = regularizer.factors() if active else (0.0, 0.0)
            activity = layer.activity_regularizer
            options["activity_regularized"] = int(activity is not None)
            options["activity_l1"], options["activity_l2"] = activity.factors() if activity is not None else (0.0, 0.0)
            for tensor, constraint in (("kernel", layer.kernel_constraint), ("bias", layer.bias_constraint)):
                active = constraint is not None and layer.trainable and (tensor == "kernel" or layer.use_bias)
                options[f"{tensor}_constraint"] = constraint.kind if active else 0
                options[f"{tensor}_min"], options[f"{tensor}_max"], options[f"{tensor}_rate"] = \
                    constraint.bounds() if active else (0.0, 0.0, 0.0)
                if tensor == "kernel":
                    options["kernel_constraint_axis"] = constraint.axis_code(2) if active else 0
            # One write of the whole record (a record array's field access costs microseconds each)
            row = dict(zip(_contract.LAYOUT.names, np.ndarray.__getitem__(layout, index).item()))
            np.ndarray.__setitem__(layout, index, tuple({**row, **options}.values()))

    def count_params(self) -> int:
        """Number of weights, as Keras counts them."""
        self._require_built("count_params")
        return int(self.params.size)

    @property
    def weights(self) -> list[np.ndarray]:
        """The weight tensors (views), Keras's order."""
        self._require_built("weights")
        return [array for layer in self.dense_layers for array in layer.weights]

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        """The weights training updates (views), Keras's order: those of the layers with ``trainable=True``."""
        self._require_built("trainable_weights")
        return [array for layer in self.dense_layers for array in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        """The weights of frozen layers (``layer.trainable = False``), Keras's order."""
        self._require_built("non_trainable_weights")
        return [array for layer in self.dense_layers for array in layer.non_trainable_weights]

    def get_weights(self) -> list[np.ndarray]:
        """``[kernel_0, bias_0, kernel_1, bias_1, ...]`` as copies, in Keras's layout."""
        return [array.copy() for array in self.weights]

    def set_weights(self, weights) -> None:
        """Load weights in the order and shapes of :meth:`get_weights`; they are cast to the model's dtype."""
        targets = self.weights
        for value, target in zip(check_weights(weights, targets, f"model {self.name!r}"), targets):
            target[:] = value

    def summary(self, line_length=None, positions=None, print_fn=None, **kwargs) -> None:
        """Print the layer table and parameter counts as Keras 3 does (``Optimizer params`` once it is built)."""
        unknown = sorted(set(kwargs) - {"expand_nested", "show_trainable", "layer_range"})
        if unknown:
            raise TypeError(f"summary got unexpected arguments {unknown}")
        text = _summary_text(self, line_length, positions)
        print(text) if print_fn is None else print_fn(text + "\n")  # Keras hands print_fn the captured text

    def _require_built(self, what: str) -> None:
        if self.params is None:
            raise ValueError(f"{what}: the model is not built yet; give it an Input(shape=...) or call fit/predict first")

    # --- training -----------------------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, weighted_metrics=None, jit_compile=None,
                **kwargs) -> None:
        """Choose the optimizer (name or object; Keras's default ``"rmsprop"``), the loss and the metrics.

        ``metrics`` is a list (or dict) of Keras metric identifiers, see
        :mod:`gdcore.metrics`: their values join ``History``, the logs and
        ``evaluate``'s result under Keras 3's keys. ``weighted_metrics`` are
        the same, weighted by ``fit``'s and ``evaluate``'s ``sample_weight``
        (or ``class_weight``) as Keras's ``Mean`` weighs them. ``jit_compile``
        is accepted for Keras compatibility (gdcore always runs its own
        compiled loop); other Keras options are refused by name.
        """
        for setting, value in kwargs.items():
            if value not in (None, False, 1, "auto"):
                raise NotImplementedError(f"compile({setting}={value!r}) is not supported")
        compiled_metrics, weighted = metrics_module.compile_metrics(metrics, weighted_metrics)
        optimizer = optimizers.get(optimizer)
        owner = getattr(optimizer, "_model", None)
        if owner is not None and owner is not self:
            raise ValueError(f"this {type(optimizer).__name__} instance already trains model {owner.name!r}: an "
                             "optimizer holds one model's state; create a new one for each model")
        if optimizer is not self.optimizer:
            optimizer.slots, optimizer.iterations = None, 0  # compiling with a new optimizer starts from scratch
        optimizer._model = self
        self.optimizer = optimizer
        self.loss = losses.get(loss)
        self._metrics, self._metric_weighted, self._run_metrics_memo = compiled_metrics, weighted, None
        if getattr(self, "built", False) and self.loss is not None:
            self._run_metrics()  # an unusable metric for this loss and output is refused now
        self._metric_directions = {key: "up" if metric.rule is None else metric.rule.direction
                                   for key, metric in compiled_metrics}  # "accuracy" is an accuracy whatever it picks
        self.compiled = True

    @property
    def metrics_names(self) -> list[str]:
        """``"loss"`` and the compiled metrics' keys, as the logs name them."""
        return ["loss", *(key for key, _ in self._metrics)] if self.compiled else []

    def _logs(self, loss, metric_sums, prefix: str = "") -> dict[str, float]:
        """Keras's logs: ``loss`` and each metric's result, keys sorted as Keras 3 sorts them."""
        values = {"loss": loss, **metrics_module.results(self._metrics, metric_sums)}
        if np.ndim(loss) == 0:  # one epoch's or batch's logs: Python floats, as Keras gives them
            values = {key: float(value) for key, value in values.items()}
        return {prefix + key: values[key] for key in sorted(values)}

    def _engine(self):
        return ENGINES[self.engine]

    def _optimizer_state(self, steps: int = 0) -> _contract.OptimizerState:
        """The optimizer's state for an engine call of at most ``steps`` updates (the schedule's rates)."""
        optimizer = self.optimizer
        frozen = tuple(not layer.trainable for layer in self.dense_layers)
        key = (self.profile.id, self.dtype, self.layout.tobytes(), frozen)
        if getattr(self, "_lanes_key", None) != key:  # properties of the layout, the profile and the frozen layers
            shared = _LANES.get(key)  # shared by models of the same layout: a sweep builds one per fit
            if shared is None:
                lanes, tensors = self.profile.update_lanes(self.layout, self.dtype), []
                for layer, _, start, shape in _contract.weight_tensors(self.layout):
                    stop = start + math.prod(shape)
                    if frozen[layer]:  # no update, no slot, no weight decay, not in the global norm (Keras's variables)
                        lanes[start:stop] = optimizers.FROZEN
                    else:
                        tensors.append((start, stop))
                shared = lanes, np.asarray(tensors, dtype=np.int64).reshape(-1, 2)
                remember(_LANES, key, shared)
            (self._lanes, self._tensors), self._lanes_key = shared, key
        hyper = optimizer.packed_hyperparameters(self.dtype)
        options = optimizer.options(self.dtype, steps, self._tensors, self.profile.name != "plain")
        return _contract.OptimizerState(hyper, optimizer.slots, optimizer.iterations, self._lanes, options)

    def _prepare_x(self, x, name="x") -> np.ndarray:
        expected = self.input_shape[0] if self.input_shape is not None else None
        features = as_features(x, name, expected, dtype=self.dtype)
        if self.params is None:
            self.build((features.shape[1],))
        return _engine_array(features)

    def _prepare_y(self, y, n_rows, name="y") -> np.ndarray:
        n_outputs = self.dense_layers[-1].units
        if self.loss is not None and self.loss.targets != "values":
            # Labels: checked against the loss (0/1, one-hot, class indices), sparse ones expanded to one-hot.
            raw = np.asarray(y) if self.loss.targets == "sparse" else as_targets(y, name, n_rows=n_rows,
                                                                                  n_outputs=n_outputs, dtype=self.dtype)
            if raw.shape[0] != n_rows:
                raise ValueError(f"x and {name} must have the same number of samples, got {n_rows} and {raw.shape[0]}")
            return _engine_array(losses.prepare_targets(self.loss, raw, n_outputs, self.dtype, name))
        return _engine_array(as_targets(y, name, n_rows=n_rows, n_outputs=n_outputs, dtype=self.dtype, broadcast=True))

    def _run_metrics(self) -> _contract.Metrics:
        """The compiled metrics as the engines take them, for this loss and output (:func:`gdcore.metrics.for_run`)."""
        n_out, activation = np.ndarray.__getitem__(self.layout, -1).item()[1:3]  # not the record's slow attributes
        key = (self.dtype, n_out, activation)
        memo = self._run_metrics_memo  # (metrics, loss, key, Metrics): the objects themselves, not their ids
        if memo is None or memo[0] is not self._metrics or memo[1] is not self.loss or memo[2] != key:
            recovered = self._training()[1] is not self.loss
            self._run_metrics_memo = (self._metrics, self.loss, key, metrics_module.for_run(
                self._metrics, self._metric_weighted, self.loss, n_out, self.dtype, activation, recovered))
        return self._run_metrics_memo[3]

    def _training_ids(self) -> tuple[_contract.Network, _contract.LossRule]:
        network, loss = self._training()
        if loss.reduction_id == losses.NONE and (network.layout.kernel_regularized.any() or
                                                 (network.layout.bias_regularized * network.layout.use_bias).any()):
            raise ValueError(f"loss reduction={loss.reduction!r} leaves the loss a vector, and Keras 3 cannot add a "
                             "regularizer's penalty to it (its fit fails stacking shapes (B,) and ()): use "
                             "reduction='sum' (the same gradient) or remove the regularizers")
        return network, _contract.LossRule(loss.id, loss.reduction_id)

    def _training(self) -> tuple[_contract.Network, losses.Loss]:
        """The network and loss ``fit``/``evaluate`` run: Keras's logits recovery (:func:`gdcore.losses.training_loss`).

        When the loss reads the logits of a sigmoid/softmax output, the output
        layer runs linear in training and evaluation; ``predict`` applies the activation.
        """
        if self.loss.dtype is not None and self.loss.dtype != self.dtype.name:
            raise NotImplementedError(
                f"a loss with dtype={self.loss.dtype!r} in a {self.dtype.name} model is not supported: gdcore computes "
                f"the loss in the model's dtype (give dtype=None or {self.dtype.name!r})")
        network = self.network
        output = self.dense_layers[-1].effective_activation.name
        memo = getattr(self, "_training_loss_memo", None)  # (loss, output activation, its training loss)
        if memo is None or memo[0] is not self.loss or memo[1] != output:  # training_loss builds a new entry: once
            memo = self._training_loss_memo = (self.loss, output, losses.training_loss(self.loss, output))
        loss = memo[2]
        if loss is self.loss:
            return network, loss
        if self.dense_layers[-1].activity_regularizer is not None:
            raise NotImplementedError(
                f"activity_regularizer on the output layer {self.dense_layers[-1].name!r} with {self.loss.name!r}: "
                f"Keras regularizes the {output} output while this loss trains on its logits; gdcore does not "
                "support that pairing yet (put the activity_regularizer on a hidden layer)")
        key = (id(self.layout), self.layout.tobytes())
        if getattr(self, "_logits_layout_key", None) != key:
            layout = self.layout.copy()
            layout.activation[-1] = activations.LINEAR.id
            self._logits_layout, self._logits_layout_key = layout, key
        return network._replace(layout=self._logits_layout), loss

    def _prepare_weights(self, sample_weight, n_rows, name="sample_weight") -> np.ndarray:
        """One finite weight per sample in the model's dtype (ones for None: a weight of 1 changes no bit)."""
        if sample_weight is None:
            return np.ones(n_rows, dtype=self.dtype)
        return np.ascontiguousarray(as_targets(sample_weight, name, n_rows=n_rows, dtype=self.dtype)[:, 0])

    def _class_weights(self, class_weight, y) -> np.ndarray:
        """Keras's ``class_weight``: each sample weighs ``class_weight[round(y)]`` (``argmax`` for several outputs), else 1.

        Keras does this for any target, a float one included: a regression
        target is rounded half to even and looked up, exactly as here.
        """
        if not isinstance(class_weight, dict):
            raise TypeError(f"class_weight must be a dict {{class index: weight}}, got {type(class_weight).__name__}")
        for key, value in class_weight.items():
            if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
                raise TypeError(f"class_weight keys must be integer class indices, got {key!r}")
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or \
                    not math.isfinite(value):
                raise ValueError(f"class_weight[{key!r}] must be a finite number, got {value!r}")
        labels = np.argmax(y, axis=-1) if y.shape[1] != 1 else y[:, 0]
        labels = np.round(labels).astype(np.int32)
        weights = np.array([class_weight.get(int(label), 1.0) for label in labels], dtype=config.floatx())
        return np.ascontiguousarray(weights.astype(self.dtype))

    def fit(self, x=None, y=None, batch_size: int | None = None, epochs: int = 1, verbose="auto", callbacks=None,
            validation_split: float = 0.0, validation_data=None, shuffle: bool = True, class_weight=None,
            sample_weight=None, initial_epoch: int = 0, steps_per_epoch: int | None = None,
            validation_steps: int | None = None, validation_batch_size: int | None = None,
            validation_freq=1) -> History:
        """Train for ``epochs`` passes over the data, Keras's way.

        Each epoch visits the samples in consecutive batches of ``batch_size``
        (default 32; the last one partial when ``len(x)`` is not a multiple),
        in a fresh permutation drawn from the model's seeded generator when
        ``shuffle`` is true and in the given order otherwise. Optimizer state
        persists across calls, so ``fit(x[p], y[p], epochs=1, shuffle=False)``
        once per epoch equals one long fit visiting orders ``p``.

        Returns the :class:`~gdcore.callbacks.History`. ``verbose`` (default
        ``"auto"``: 1) prints Keras 3's progress output: ``Epoch e/E`` (when
        there is more than one epoch) and a progress bar, 2 one line per
        epoch, 0 nothing. A NaN or infinite batch loss stops training with a
        :class:`TrainingDivergedWarning`: weights and optimizer state are those
        at the end of the last completed epoch, and the History holds every
        completed epoch.

        ``validation_split`` holds out the *last* fraction of the samples,
        before any shuffling, as Keras does; ``validation_data`` wins if both
        are given. Ctrl-C stops training at the end of the step it is in, with
        weights, optimizer state, ``optimizer.iterations`` and History
        consistent, then raises ``KeyboardInterrupt``.

        ``sample_weight`` (one number per sample) weighs each sample's loss as
        Keras does: the batch loss is :math:`\\sum_b w_b \\ell_b / B`, B the
        batch's size whatever the weights (Keras's ``sum_over_batch_size``);
        the metrics stay unweighted. ``class_weight`` (``{class: weight}``)
        gives each sample the weight of its rounded target, as Keras 3 does.
        ``validation_data`` may be ``(x, y, sample_weight)``.

        ``steps_per_epoch`` runs that many batches per epoch, as Keras 3 does
        on arrays: one pass over the (shuffled) data serves consecutive epochs,
        an epoch ends early at the pass's end ("Your input ran out of data",
        warned as Keras warns) and the next epoch starts a new pass (a new
        order: under ``random="keras"`` Keras's same permutation).
        ``validation_steps`` evaluates the first that many validation batches
        each epoch. Without a ``batch_size``, Keras's array adapter picks
        ``ceil(n / steps_per_epoch)`` (and ``ceil(n_val / validation_steps)``
        for the validation pass) where the steps are given, else 32.

        ``validation_batch_size`` is the validation pass's batch size (default:
        ``batch_size``'s rule above). ``validation_freq`` validates after epoch
        ``e`` (counted from 1, across ``initial_epoch``) when ``e % k == 0`` for
        an integer ``k``, or when ``e`` is in a list, as Keras 3 does: the
        ``val_`` keys of History and of the epoch's logs exist only for the
        epochs that validated.
        """
        if steps_per_epoch is not None:
            steps_per_epoch = positive_int(steps_per_epoch, "steps_per_epoch")
        if validation_steps is not None:
            validation_steps = positive_int(validation_steps, "validation_steps")
        if validation_batch_size is not None:
            validation_batch_size = positive_int(validation_batch_size, "validation_batch_size")
        return self._train(x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
                           initial_epoch, sample_weight=sample_weight, class_weight=class_weight,
                           steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
                           validation_batch_size=validation_batch_size,
                           validation_freq=_validation_freq(validation_freq))

    def _train(self, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
               initial_epoch, on_step=None, sample_weight=None, class_weight=None, steps_per_epoch=None,
               validation_steps=None, validation_batch_size=None, validation_freq=1) -> History:
        """The epoch driver behind :meth:`fit` and :func:`gdcore.trace.fit_trace` (module docstring).

        ``on_step(epoch, step)``, if given, is called for every update of every
        *completed* epoch (``epoch`` counted from 0 across ``fit`` calls,
        ``step`` a :class:`gdcore._contract.Step`); the NumPy engine runs the
        steps then (same bits as the compiled one).
        """
        if self.optimizer is None or self.loss is None:
            raise ValueError("fit: the model must be compiled first: call compile(optimizer=..., loss=...)")
        given_batch_size = None if batch_size is None else positive_int(batch_size, "batch_size")
        epochs = positive_int(epochs, "epochs", minimum=0)
        initial_epoch = positive_int(initial_epoch, "initial_epoch", minimum=0)
        verbose = _verbosity(verbose)
        if not isinstance(shuffle, (bool, np.bool_)) and shuffle != "batch":
            raise TypeError(f"shuffle must be True, False or 'batch', got {shuffle!r}")
        if shuffle == "batch" and self.random != "keras":
            raise NotImplementedError("shuffle='batch' is Keras's stream: use random='keras'")
        x = self._prepare_x(x)
        y = self._prepare_y(y, x.shape[0])
        if class_weight is not None and sample_weight is not None:
            raise ValueError("fit: give sample_weight or class_weight, not both (Keras would silently drop "
                             "sample_weight)")
        weights = self._class_weights(class_weight, y) if class_weight is not None else \
            self._prepare_weights(sample_weight, x.shape[0])
        x, y, weights, val_x, val_y, val_weights = self._validation(x, y, weights, validation_split, validation_data)
        # one batch either way; keeps the engine's integers small
        batch_size = min(_batch_size(given_batch_size, x.shape[0], steps_per_epoch), x.shape[0])
        val_batch_size = _batch_size(validation_batch_size or given_batch_size, val_x.shape[0], validation_steps)
        val_batch_size = max(1, min(val_batch_size, val_x.shape[0]))
        if validation_steps is not None and val_x.shape[0]:
            if validation_steps > math.ceil(val_x.shape[0] / val_batch_size):
                warnings.warn(_RAN_OUT_OF_DATA, UserWarning, stacklevel=3)
            keep = validation_steps * val_batch_size  # Keras restarts the validation iterator every epoch
            val_x, val_y, val_weights = val_x[:keep], val_y[:keep], val_weights[:keep]
        validates = lambda epoch: bool(val_x.shape[0]) and _should_validate(epoch, validation_freq)  # noqa: E731
        every_epoch = validation_freq == 1 or not val_x.shape[0]
        callbacks = check(callbacks)
        steps = math.ceil(x.shape[0] / batch_size)
        history = History()
        keys = self.metrics_names
        any_validation = bool(val_x.shape[0]) and any(validates(epoch) for epoch in range(initial_epoch, epochs))
        history.history = {key: [] for key in sorted(keys + (["val_" + key for key in keys] if any_validation else []))}
        everything = [*callbacks, history] + ([ProgbarLogger()] if verbose else [])
        callback_list = CallbackList(everything, self, {"verbose": verbose, "epochs": epochs,
                                                        "steps": steps if steps_per_epoch is None else steps_per_epoch})
        progbar = everything[-1] if verbose else None
        per_batch = bool(callbacks) and any(overrides(c, BATCH_HOOKS) for c in callbacks)
        test_hooks = bool(callbacks) and any(overrides(c, TEST_HOOKS) for c in callbacks)
        per_epoch = bool(callbacks) or verbose > 0 or on_step is not None
        self.history = history
        self.stop_training = False
        self.optimizer.check(self.dtype)
        self.optimizer.build(self.params.size, self.dtype)
        engine = _numpy_engine if on_step is not None else self._engine()
        window = self._window_state()
        logs = None
        passes = _Passes(self, x.shape[0], steps, batch_size, shuffle, steps_per_epoch)
        with _Interrupts() as interrupts:
            callback_list.on_train_begin()
            epoch = initial_epoch
            while epoch < epochs and not self.stop_training:
                if steps_per_epoch is None:
                    # Every epoch of an engine call validates or none does: with validation_freq, one epoch per call.
                    count = 1 if per_epoch or not every_epoch else max(1, min(epochs - epoch, _ORDER_CHUNK // x.shape[0]))
                    orders = self._orders(x.shape[0], count, shuffle, batch_size)
                    epoch_x, epoch_y, epoch_weights, epoch_steps = x, y, weights, steps
                else:  # one epoch's batches of the current pass, gathered (the engine visits them in order)
                    count = 1
                    rows, epoch_steps = passes.next_epoch()
                    epoch_x, epoch_y, epoch_weights = x[rows], y[rows], np.ascontiguousarray(weights[rows])
                    orders = np.arange(rows.shape[0], dtype=np.int64)[None, :]
                if per_epoch:
                    callback_list.on_epoch_begin(epoch)
                start_batch, done = 0, 0
                loss_history = np.zeros(count, dtype=self.dtype)
                val_history = np.zeros(count, dtype=self.dtype)
                metric_history = np.zeros((count, len(self._metrics), 2), dtype=self.dtype)
                val_metric_history = np.zeros((count, len(self._metrics), 2), dtype=self.dtype)
                validating = validates(epoch)  # for each epoch of this call (count is 1 unless all validate)
                validate_inside = validating and not test_hooks
                data = _contract.Epochs(epoch_x, epoch_y, orders, batch_size, _contract.Batches(
                    val_x if validate_inside else val_x[:0], val_y if validate_inside else val_y[:0], val_batch_size,
                    val_weights if validate_inside else val_weights[:0]), epoch_weights)
                failed = -1
                while done < count:
                    max_steps = 1 if per_batch else window.steps_for(progbar is not None or interrupts is not None)
                    if per_batch:
                        callback_list.on_train_batch_begin(start_batch)
                    recorded = []
                    window.prepare(start_batch, max_steps, epoch_steps if progbar or per_batch else 0)
                    started = time.perf_counter()
                    iterations, completed, ran, failed = engine.fit_loop(
                        self.profile, data._replace(orders=orders[done:]), *self._training_ids(), self._run_metrics(),
                        self._optimizer_state(min(max_steps, (count - done) * epoch_steps)),
                        _contract.Log(loss_history[done:], val_history[done:], metric_history[done:],
                                      val_metric_history[done:]),
                        window.window,
                        **({"on_step": recorded.append} if on_step is not None else {}))
                    window.timed(ran, time.perf_counter() - started)
                    self.optimizer.iterations = int(iterations)
                    for step in recorded:
                        if step.epoch < completed or (failed < 0 and step.epoch == completed):
                            on_step(epoch + done + step.epoch, step)
                    self._report_batches(window, ran, start_batch, epoch_steps, completed, per_batch, callback_list,
                                         progbar)
                    if completed and not per_epoch:  # only the History listens: it gets the epochs at once
                        history.epoch.extend(range(epoch + done, epoch + done + completed))
                        span = slice(done, done + completed)
                        columns = self._logs(loss_history[span], metric_history[span])
                        if validating:
                            columns.update(self._logs(val_history[span], val_metric_history[span], "val_"))
                        for key, values in columns.items():
                            history.history[key].extend(np.asarray(values).tolist())
                        logs = {key: history.history[key][-1] for key in columns}  # the last epoch's, as Keras's
                        done += completed
                    elif completed:  # an epoch ended in this call
                        logs = self._logs(loss_history[done], metric_history[done])
                        if validating:
                            logs.update(self._logs(val_history[done], val_metric_history[done], "val_")
                                        if validate_inside else
                                        self._validate(val_x, val_y, val_weights, val_batch_size, callback_list))
                        callback_list.on_epoch_end(epoch + done, dict(sorted(logs.items())))
                        done += 1
                    if failed < 0:
                        start_batch = (start_batch + ran) % epoch_steps  # where the next call starts in its epoch
                    if failed >= 0 or interrupts.requested:
                        break
                    if self.stop_training and per_batch:
                        break
                if per_batch and self.stop_training and done < count and failed < 0 and not interrupts.requested:
                    # Keras ends an epoch a batch callback stopped: its logs are the running loss so far.
                    logs = self._logs(window.window.running[0] / window.window.running[1], window.window.metric_running)
                    if validates(epoch + done):
                        logs.update(self._validate(val_x, val_y, val_weights, val_batch_size, callback_list))
                    callback_list.on_epoch_end(epoch + done, dict(sorted(logs.items())))
                    done += 1
                epoch += done
                if failed >= 0:
                    self._diverged(history, epoch, failed, int(window.failure[0]), x, y)
                    break
                if interrupts.requested:
                    break
            if interrupts.requested:
                raise KeyboardInterrupt(f"fit interrupted after {self.optimizer.iterations} updates "
                                        f"({len(history.epoch)} complete epoch(s) recorded in History)")
            if epochs > 0 and self.optimizer.use_ema:  # Keras's end of fit, before on_train_end: the weights
                self._optimizer_state()                   # become their moving averages (the lanes: which train)
                self.optimizer.finalize_variable_values(self.params, self._lanes)
            callback_list.on_train_end(logs)
        if history.epoch:  # Keras's History has a key once an epoch logged it: a validation that never ran has none
            for key in [key for key, values in history.history.items() if not values and key.startswith("val_")]:
                del history.history[key]
        return history

    def _window_state(self):
        """The engine's window buffers, reused across fits of this model (their sizes follow the model's)."""
        state = getattr(self, "_window", None)
        if state is None or state.matches(self.params, self.optimizer.slots, len(self._metrics)) is False:
            state = self._window = _WindowState(self.params, self.optimizer.slots, self.dtype, len(self._metrics))
        state.failure[0] = 0
        return state

    def _report_batches(self, window, ran, start_batch, steps, completed, per_batch, callback_list, progbar):
        """Batch callbacks and the progress bar, from the running losses the engine wrote for this call's steps."""
        if not ran or (not per_batch and progbar is None):
            return
        losses_so_far, metrics_so_far = window.window.batch_loss, window.window.batch_metrics
        if per_batch:
            callback_list.on_train_batch_end(start_batch, self._logs(losses_so_far[0], metrics_so_far[0]))
            return
        # The bar only redraws every 0.05 s: its first step and the call's last step are what it can show.
        positions = sorted({0, ran - 1} if start_batch == 0 else {ran - 1})
        for position in positions:
            batch = (start_batch + position) % steps if completed else start_batch + position
            if batch == steps - 1 and completed:
                continue  # the epoch's end is drawn by on_epoch_end
            position = min(position, len(losses_so_far) - 1)
            progbar.on_train_batch_end(batch, self._logs(losses_so_far[position], metrics_so_far[position]))

    def _validation(self, x, y, weights, validation_split, validation_data):
        if validation_split and validation_data is None:
            if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)) or \
                    not 0 < validation_split < 1:
                raise ValueError(f"validation_split must be a number in (0, 1), got {validation_split!r}")
            split_at = math.floor(x.shape[0] * (1.0 - validation_split))
            if split_at == 0 or split_at == x.shape[0]:
                raise ValueError(f"validation_split={validation_split} leaves no training or no validation samples "
                                 f"out of {x.shape[0]}")
            validation_data = (x[split_at:], y[split_at:], weights[split_at:])  # Keras splits the weights too
            x, y, weights = x[:split_at], y[:split_at], np.ascontiguousarray(weights[:split_at])
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight_val), "
                                 f"got {type(validation_data).__name__} of length {len(validation_data)}"
                                 if isinstance(validation_data, (tuple, list)) else
                                 f"validation_data must be a tuple (x_val, y_val), got {type(validation_data).__name__}")
            val_x = self._prepare_x(validation_data[0], "validation_data[0]")
            val_y = self._prepare_y(validation_data[1], val_x.shape[0], "validation_data[1]")
            val_weights = self._prepare_weights(validation_data[2] if len(validation_data) == 3 else None,
                                                val_x.shape[0], "validation_data[2]")
            return x, y, weights, val_x, val_y, val_weights
        return (x, y, weights, np.empty((0, x.shape[1]), dtype=self.dtype), np.empty((0, y.shape[1]), dtype=self.dtype),
                np.empty(0, dtype=self.dtype))

    def _validate(self, val_x, val_y, val_weights, batch_size, callback_list) -> dict[str, float]:
        """The ``val_`` logs by the evaluate path, calling the test hooks (as Keras's fit does)."""
        callback_list.on_test_begin()
        logs = self._evaluate_batches(val_x, val_y, val_weights, batch_size, callback_list)
        callback_list.on_test_end(logs)
        return {"val_" + key: value for key, value in logs.items()}

    def _evaluate_batches(self, x, y, weights, batch_size, callback_list=None) -> dict[str, float]:
        """Keras's evaluate logs: the loss metric and the metrics over batches of ``batch_size``."""
        sums = np.zeros((1 + len(self._metrics), 2), dtype=self.dtype)
        if callback_list is None or not callback_list.listens(("on_test_batch_begin", "on_test_batch_end")):
            self._engine().evaluate_loop(self.profile, _contract.Batches(x, y, batch_size, weights),
                                         *self._training_ids(), self._run_metrics(), sums)
            return self._logs(sums[0, 0] / sums[0, 1], sums[1:])
        # Per batch, with the running means Keras's metrics show: the engine adds each batch into the same sums.
        for index, start in enumerate(range(0, x.shape[0], batch_size)):
            callback_list.on_test_batch_begin(index)
            rows = slice(start, start + batch_size)
            n = x[rows].shape[0]
            self._engine().evaluate_loop(self.profile, _contract.Batches(x[rows], y[rows], n, weights[rows]),
                                         *self._training_ids(), self._run_metrics(), sums)
            callback_list.on_test_batch_end(index, self._logs(sums[0, 0] / sums[0, 1], sums[1:]))
        return self._logs(sums[0, 0] / sums[0, 1], sums[1:])

    def _diverged(self, history, epoch, batch, reason, x, y):
        what = {_contract.FAILURE_LOSS: f"the loss of batch {batch} in epoch {epoch + 1} is NaN or infinite",
                _contract.FAILURE_UPDATE: f"the update of batch {batch} in epoch {epoch + 1} made a weight or an "
                                          "optimizer state NaN or infinite",
                _contract.FAILURE_VALIDATION: f"the validation loss after epoch {epoch + 1} is NaN or infinite"}[reason]
        history.stopped = {"epoch": epoch, "batch": int(batch), "reason": what}
        warnings.warn(f"training diverged: {what} ({self._likely_cause(x, y)}); stopped after {len(history.epoch)} "
                      "complete epoch(s), weights and optimizer state restored to the end of the last one",
                      TrainingDivergedWarning, stacklevel=4)

    def _likely_cause(self, x, y) -> str:
        """The cause a reader should look at first, from what is known about the run."""
        optimizer = self.optimizer
        if getattr(optimizer, "epsilon", None) == 0:
            return (f"{type(optimizer).__name__}(epsilon=0) divides by zero where a gradient and its average are 0; "
                    "use a positive epsilon")
        scale = max(float(np.max(np.abs(x))), float(np.max(np.abs(y))))
        if scale > np.finfo(self.dtype).max ** 0.25:
            return (f"the data's scale (values up to {scale:.3g}) overflows {self.dtype.name} in the products and "
                    "squares: standardize x and y")
        return f"learning_rate={optimizer.learning_rate} may be too large"

    def _orders(self, n: int, epochs: int, shuffle, batch_size: int = 32) -> np.ndarray:
        if not shuffle:
            return np.tile(np.arange(n, dtype=np.int64), (epochs, 1))
        if self.random == "keras":
            # Without a global seed TensorFlow picks the shuffle's seeds at random: so do we, from Python's random.
            seed = _random.tensorflow_seed()
            seed = pyrandom.getrandbits(31) if seed is None else None
            return np.ascontiguousarray(_random.shuffle_orders(n, epochs, shuffle, batch_size, seed=seed), np.int64)
        engine = _auto_engine if self.engine == "auto" else _numba_engine
        return engine.permutations(self._rng.bit_generator.random_raw(epochs), n)

    def evaluate(self, x=None, y=None, batch_size: int | None = None, verbose="auto", sample_weight=None,
                 steps: int | None = None, callbacks=None, return_dict: bool = False, **kwargs):
        """The loss and metrics on (x, y), Keras's way: batch losses averaged with batch-size weights (batches of 32).

        ``sample_weight`` weighs each sample's loss as in :meth:`fit` (the metrics are unweighted).
        ``steps`` evaluates the first that many batches (more than there are:
        all of them, with Keras's "ran out of data" warning); without a
        ``batch_size`` the batches are then ``ceil(n / steps)`` rows, as Keras's array adapter makes them.
        """
        if kwargs:
            raise ValueError(f"evaluate: arguments not recognized: {kwargs}; valid: x, y, batch_size, verbose, "
                             "sample_weight, steps, callbacks, return_dict")
        if self.loss is None:
            raise ValueError("evaluate: the model must be compiled first: call compile(optimizer=..., loss=...)")
        steps = None if steps is None else positive_int(steps, "steps")
        batch_size = positive_int(batch_size, "batch_size") if batch_size is not None else None
        verbose = _verbosity(verbose)
        x = self._prepare_x(x)
        y = self._prepare_y(y, x.shape[0])
        weights = self._prepare_weights(sample_weight, x.shape[0])
        batch_size = _batch_size(batch_size, x.shape[0], steps)
        x, y, weights = _first_steps(steps, batch_size, x.shape[0], x, y, weights)
        callbacks = check(callbacks)
        batches = math.ceil(x.shape[0] / batch_size)
        callback_list = CallbackList([*callbacks] + ([ProgbarLogger()] if verbose else []), self,
                                     {"verbose": verbose, "epochs": 1, "steps": batches if steps is None else steps})
        callback_list.on_test_begin()
        logs = self._evaluate_batches(x, y, weights, batch_size, callback_list if callbacks else None)
        if verbose and not callbacks:
            callback_list.callbacks[-1].on_test_batch_end(batches - 1, logs)
        callback_list.on_test_end(logs)
        if return_dict:
            return logs
        # Keras's order: the loss, each metric by its own name (a repeated name twice), then the other keys, sorted.
        names = ["loss", *(metric.name for _, metric in self._metrics)]
        values = [logs[name] for name in names if name in logs] + [logs[key] for key in sorted(logs) if key not in names]
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size: int | None = None, verbose="auto", steps: int | None = None,
                callbacks=None) -> np.ndarray:
        """Outputs of shape (n_samples, units), computed in batches of ``batch_size`` (32) as Keras does.

        ``steps``: the outputs of the first that many batches, as :meth:`evaluate` takes them.
        """
        steps = None if steps is None else positive_int(steps, "steps")
        batch_size = positive_int(batch_size, "batch_size") if batch_size is not None else None
        verbose = _verbosity(verbose)
        x = self._prepare_x(x)
        batch_size = _batch_size(batch_size, x.shape[0], steps)
        (x,) = _first_steps(steps, batch_size, x.shape[0], x)
        callbacks = check(callbacks)
        callback_list = CallbackList([*callbacks] + ([ProgbarLogger()] if verbose else []), self,
                                     {"verbose": verbose, "epochs": 1,
                                      "steps": math.ceil(x.shape[0] / batch_size) if steps is None else steps})
        callback_list.on_predict_begin()
        empty = np.empty((0, 0), dtype=self.dtype)
        if callbacks and callback_list.listens(("on_predict_batch_begin", "on_predict_batch_end")):
            parts = []
            for index, start in enumerate(range(0, x.shape[0], batch_size)):
                callback_list.on_predict_batch_begin(index)
                rows = x[start : start + batch_size]
                parts.append(self._engine().predict_loop(self.profile, _contract.Batches(rows, empty, len(rows),
                                                                                         empty.reshape(-1)),
                                                         self.network))
                callback_list.on_predict_batch_end(index, {"outputs": parts[-1]})
            result = np.concatenate(parts)
        else:
            batches = _contract.Batches(x, empty, batch_size, empty.reshape(-1))
            result = self._engine().predict_loop(self.profile, batches, self.network)
        callback_list.on_predict_end()
        return result

    # --- files (gdcore.saving) ------------------------------------------------------------

    def save(self, filepath, overwrite: bool = True, **kwargs) -> None:
        """Write the model to a Keras ``.keras`` file (config, weights, optimizer state): :func:`gdcore.saving.save_model`."""
        from gdcore import saving

        saving.save_model(self, filepath, overwrite=overwrite, **kwargs)

    def save_weights(self, filepath, overwrite: bool = True) -> None:
        """Write the weights to a Keras ``.weights.h5`` file: :func:`gdcore.saving.save_weights`."""
        from gdcore import saving

        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, **kwargs) -> None:
        """Load weights from a ``.weights.h5`` (or ``.keras``) file written by Keras or gdcore: :func:`gdcore.saving.load_weights`."""
        from gdcore import saving

        saving.load_weights(self, filepath, **kwargs)

    def get_config(self) -> dict:
        """Keras's model config (layers and their settings): :func:`gdcore.saving.model_config`."""
        from gdcore import saving

        return saving.model_config(self)

    def __call__(self, x) -> np.ndarray:
        if isinstance(x, KerasTensor):
            raise NotImplementedError("calling a model on a symbolic tensor (nesting models) is not supported")
        x = np.asarray(x)
        return self.predict(x, batch_size=max(len(x), 1), verbose=0)

    def __repr__(self) -> str:
        layers = ", ".join(repr(layer) for layer in self.layers if not isinstance(layer, InputLayer))
        return (f"{type(self).__name__}([{layers}], name={self.name!r}, dtype={self.dtype.name!r}, "
                f"numerics={self.profile.name!r}, engine={self.engine!r})")


class Sequential(Model):
    """A :class:`Model` built from a list: an optional ``Input(shape=(d,))`` followed by Dense layers.

    Without an ``Input`` (or a first layer's ``input_shape``) the model is built
    by its first ``fit``/``predict``, as Keras builds it.
    """

    _default_name = "sequential"

    def __init__(self, layers=None, dtype: str | None = None, numerics: str | None = None, engine: str = "auto",
                 seed: int | None = None, name: str | None = None, trainable: bool = True, random: str | None = None):
        if trainable is not True:
            raise NotImplementedError("Sequential(trainable=False) is not supported")
        self._configure(name, dtype, numerics, engine, seed, random)
        if layers is not None and (isinstance(layers, (Dense, InputLayer, KerasTensor, str)) or
                                   not hasattr(layers, "__iter__")):
            raise TypeError(f"layers must be a list of layers, got {type(layers).__name__}: "
                            "pass Sequential([layer, ...])")
        for layer in layers or []:
            self._append(layer)
        if self.input_shape is not None and self.dense_layers:
            self.build(self.input_shape)

    def add(self, layer) -> None:
        """Append an ``Input`` (first only), a ``Dense`` or an activation layer; earlier layers keep their weights."""
        if isinstance(layer, ActivationLayer):
            self._append(layer)  # folded into the last Dense layer: no weight changes
            return
        previous = self.get_weights() if self.params is not None else None
        self._append(layer)
        if self.input_shape is not None and self.dense_layers:
            self.params = None
            self.build(self.input_shape)
            if previous:
                for array, value in zip(self.weights, previous):
                    array[:] = value

    def pop(self) -> None:
        """Remove the last layer (the others keep their weights)."""
        if not self.dense_layers:
            raise ValueError("pop: the model has no layer to remove")
        index = len(self.dense_layers) - 1
        if index in self._activation_layers:
            layer = self._activation_layers.pop(index)
            layer._model = self.dense_layers[index].folded = None
            if self.params is not None:
                self.layout.activation[index] = self.dense_layers[index].activation.id
                _set_parameters(self.layout, index, self.dense_layers[index].effective_parameters)
            return
        previous = self.get_weights() if self.params is not None else None
        self.dense_layers.pop()._model = None
        self.params = None
        if previous and self.dense_layers:
            self.build(self.input_shape)
            for array, value in zip(self.weights, previous):
                array[:] = value

    def _append(self, layer) -> None:
        if isinstance(layer, KerasTensor):
            source, _ = layer._keras_history
            if not isinstance(source, InputLayer):
                raise TypeError("Sequential takes layers; a tensor in the list must be an Input(shape=...)")
            layer = source
        if isinstance(layer, InputLayer):
            if self.dense_layers or self.input_shape is not None:
                raise ValueError("Input must be the first layer and appear once")
            self._input_layer, self.input_shape = layer, layer.shape
            return
        if not isinstance(layer, (Dense, ActivationLayer)):
            raise TypeError("layers must be gdcore.Input, gdcore.layers.Dense or an activation layer (ReLU, LeakyReLU, "
                            f"ELU, Activation), got {type(layer).__name__}")
        self._adopt(layer)


def _chain(inputs, outputs) -> tuple[InputLayer, list[Dense]]:
    """The Input layer and the Dense layers from ``inputs`` to ``outputs``, or a ValueError saying what is supported."""
    supported = ("gdcore trains a chain of layers: one Input, then Dense layers each called on the previous one's "
                 "output, one output")

    def single(value, what):
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, (list, tuple)):
            if len(value) != 1:
                raise ValueError(f"Model got {len(value)} {what}; {supported}")
            value = value[0]
        if not isinstance(value, KerasTensor):
            raise TypeError(f"Model {what} must be tensors from gdcore.Input / a layer call, got {type(value).__name__}")
        return value

    inputs, outputs = single(inputs, "inputs"), single(outputs, "outputs")
    layers, tensor = [], outputs
    while True:
        layer, source = tensor._keras_history
        if isinstance(layer, InputLayer):
            break
        if layer in layers:
            raise ValueError(f"layer {layer.name!r} appears twice on the path to the output; {supported}")
        layers.append(layer)
        tensor = source
    if tensor is not inputs:
        raise ValueError(f"the outputs do not come from these inputs (they start at {tensor.name!r}); {supported}")
    if not layers:
        raise ValueError(f"the model has no layer between its input and its output; {supported}")
    return inputs._keras_history[0], layers[::-1]


def _batch_size(batch_size, n: int, steps) -> int:
    """Keras's array adapter: the given batch size, else ``ceil(n / steps)`` when steps are given, else 32."""
    if batch_size:
        return batch_size
    return max(1, math.ceil(n / steps)) if steps else 32


def _validation_freq(validation_freq):
    """``fit(validation_freq=)``: an integer >= 1 or a list of epoch numbers (from 1), as Keras 3 takes them."""
    if isinstance(validation_freq, list):
        for epoch in validation_freq:
            positive_int(epoch, "each epoch of validation_freq")
        return frozenset(validation_freq)
    if isinstance(validation_freq, bool) or not isinstance(validation_freq, (int, np.integer)):
        raise TypeError(f"validation_freq must be an integer >= 1 or a list of epoch numbers, got {validation_freq!r}")
    return positive_int(validation_freq, "validation_freq")


def _should_validate(epoch: int, validation_freq) -> bool:
    """Keras's ``_should_eval``: after epoch ``epoch`` (counted from 0)?"""
    if isinstance(validation_freq, frozenset):
        return epoch + 1 in validation_freq
    return (epoch + 1) % validation_freq == 0


def _first_steps(steps, batch_size: int, n: int, *arrays):
    """``evaluate``/``predict(steps=)`` on arrays: the rows of the first ``steps`` batches, warning as Keras when fewer."""
    if steps is None:
        return arrays
    if steps > math.ceil(n / batch_size):
        warnings.warn(_RAN_OUT_OF_DATA, UserWarning, stacklevel=3)
    return tuple(array[: steps * batch_size] for array in arrays)


def _verbosity(verbose) -> int:
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or not isinstance(verbose, (int, np.integer)) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


class _WindowState:
    """The engine's :class:`~gdcore._contract.Window` for one fit, and how many steps a call should run."""

    def __init__(self, params, slots, dtype, n_metrics=0):
        self._saved = (params.copy(), slots.copy(), np.zeros(1, np.int64))
        self.failure = np.zeros(1, np.int64)
        self._running = np.zeros(2, dtype)
        self._metric_running = np.zeros((n_metrics, 2), dtype)
        self._per_step = None
        self.window = None

    def matches(self, params, slots, n_metrics=0) -> bool:
        saved_params, saved_slots, _ = self._saved
        return saved_params.shape == params.shape and saved_params.dtype == params.dtype and \
            saved_slots.shape == slots.shape and self._metric_running.shape[0] == n_metrics

    def steps_for(self, someone_waits: bool) -> int:
        """Steps in the next call: about ``_SLICE_SECONDS`` of work (as measured), unbounded at first."""
        if self._per_step is None:
            return 1 << 62 if not someone_waits else 1 << 12
        return max(1, int(_SLICE_SECONDS / self._per_step))

    def timed(self, steps: int, seconds: float) -> None:
        if steps and seconds < 2.0:  # a longer first call was compiling: not a measure of a step
            self._per_step = seconds / steps

    def prepare(self, start_batch: int, max_steps: int, record: int) -> None:
        batch_loss = np.zeros(min(record, max_steps), self._running.dtype) if record else self._running[:0]
        batch_metrics = np.zeros((len(batch_loss), *self._metric_running.shape), self._running.dtype)
        self.window = _contract.Window(start_batch, max_steps, self._running, batch_loss, *self._saved, self.failure,
                                       self._metric_running, batch_metrics)


# --- summary -----------------------------------------------------------------------------------


def _memory(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n_bytes / 1024 < 1:
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.2f} PB"


def _summary_text(model, line_length=None, positions=None) -> str:
    """Keras 3's summary table, box-drawn, without colour."""
    length = line_length or min(88, shutil.get_terminal_size().columns - 4)
    positions = positions or [0.45, 0.80, 1.0]
    widths, current = [], 0
    for position in positions:
        width = int(position * length) - current
        widths.append(width)
        current += width
    inner = [width - 1 for width in widths]
    inner[1] -= sum(inner) + len(inner) + 1 - length  # the borders take one more column: from the middle one
    rows = []
    for layer in model.layers:
        if isinstance(layer, InputLayer):
            rows.append((f"{layer.name} (InputLayer)", str((model._batch_dim, *layer.shape)), "0"))
        elif isinstance(layer, ActivationLayer):
            dense = model.dense_layers[[index for index, folded in model._activation_layers.items()
                                        if folded is layer][0]]
            shape = str((model._batch_dim, dense.units)) if dense.built else "?"
            rows.append((f"{layer.name} ({type(layer).__name__})", shape, "0"))
        elif layer.built:
            rows.append((f"{layer.name} (Dense)", str((model._batch_dim, layer.units)), f"{layer.count_params():,}"))
        else:
            rows.append((f"{layer.name} (Dense)", "?", "0 (unbuilt)"))

    def line(cells, aligns=("<", "<", ">")):
        return "│" + "│".join(f" {cell:{align}{width - 2}} " for cell, align, width in zip(cells, aligns, inner)) + "│"

    out = [f'Model: "{model.name}"',
           "┏" + "┳".join("━" * w for w in inner) + "┓",
           "┃" + "┃".join(f" {title:{align}{w - 2}} " for title, align, w in
                         zip(("Layer (type)", "Output Shape", "Param #"), ("<", "<", ">"), inner)) + "┃",
           "┡" + "╇".join("━" * w for w in inner) + "┩"]
    for index, row in enumerate(rows):
        out.append(line(row))
        out.append(("├" + "┼".join("─" * w for w in inner) + "┤") if index < len(rows) - 1 else
                   ("└" + "┴".join("─" * w for w in inner) + "┘"))
    if not rows:
        out.append("└" + "┴".join("─" * w for w in inner) + "┘")
    itemsize = model.dtype.itemsize
    trainable = sum(int(w.size) for w in model.trainable_weights) if model.built else 0
    frozen = model.count_params() - trainable if model.built else 0
    optimizer_count, optimizer_bytes = 0, 0
    if model.compiled and model.optimizer is not None and model.optimizer.slots is not None:
        # Keras's optimizer variables: iterations (int64) and the learning rate, then each slot per weight.
        active = len(model.optimizer.active_slots()) + model.optimizer.use_ema
        optimizer_count = 2 + active * trainable
        optimizer_bytes = 8 + itemsize + active * trainable * itemsize
    total = trainable + frozen + optimizer_count
    out += [f" Total params: {total:,} ({_memory((trainable + frozen) * itemsize + optimizer_bytes)})",
            f" Trainable params: {trainable:,} ({_memory(trainable * itemsize)})",
            f" Non-trainable params: {frozen:,} ({_memory(frozen * itemsize)})"]
    if optimizer_count:
        out.append(f" Optimizer params: {optimizer_count:,} ({_memory(optimizer_bytes)})")
    return "\n".join(out)


def load_model(filepath, compile: bool = True, **kwargs):
    """Open a ``.keras`` file written by Keras or gdcore (Dense-only models): :func:`gdcore.saving.load_model`."""
    from gdcore import saving

    return saving.load_model(filepath, compile=compile, **kwargs)
