"""The Keras driver: the Keras twin of a gdcore model, trained on the same batches, and the way back.

TensorFlow is imported on first use (:func:`import_keras`), so ``reference``
imports without it. Pitfalls handled here, each checked by a live test:

* **float64.** ``keras.config.set_floatx('float64')`` is not enough once a
  layer has been built: the dtype policy must be set too. Both must stay set
  while the optimizer is created (its learning-rate variable takes the floatx
  of that moment: a float32 ``0.01`` moves float64 weights by ~1e-8 relative)
  and while ``fit`` runs (Keras casts NumPy inputs to floatx and keeps its loss
  metric in floatx). :func:`keras_dtype` sets both and restores the previous
  settings; every Keras call below runs inside it.
* ``jit_compile=False``, so the same TensorFlow kernels run everywhere.
* Keras refuses a NumPy scalar ``learning_rate``: hyperparameters are passed as Python floats.
* Targets are passed as (n, 1), the output's shape.
* Optimizer state persists across ``fit`` calls on the same compiled model,
  which is what lets one ``fit(x[p], y[p], epochs=1, shuffle=False)`` per
  epoch impose the sample order of every epoch.
"""

from __future__ import annotations

import contextlib
import os
import time

import numpy as np

import gdcore
from reference.errors import Unsupported
from reference.gdcore_driver import weight_names
from reference.trajectory import Trajectory, finite, record_history

# gdcore's tables are the list of what has a twin: an entry's Keras name is its name in Keras.
SUPPORTED_ACTIVATIONS = tuple(activation.name for activation in gdcore.activations.ACTIVATIONS)
SUPPORTED_LOSSES = {key: loss.name for key, loss in gdcore.losses.BY_NAME.items()}
# Optimizer settings gdcore does not have: each must hold its Keras default value.
_UNSUPPORTED_OPTIMIZER_DEFAULTS = {"loss_scale_factor": None, "gradient_accumulation_steps": None}
_keras = None


def import_keras():
    """The ``keras`` module, imported once, with TensorFlow's native start-up chatter silenced.

    Raises ImportError with the install command when TensorFlow is missing.
    When ``TF_CPP_MIN_LOG_LEVEL`` is unset it is set to 2 (errors only), and
    the lines TensorFlow's C++ runtime prints before its logging starts are
    discarded during the import.
    """
    global _keras
    if _keras is not None:
        return _keras
    quiet = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    if quiet:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    try:
        with _native_stderr_silenced(quiet):
            import tensorflow  # noqa: F401  (keras needs its backend loaded)
            import keras
    except ImportError as error:
        raise ImportError(
            "reference's Keras driver needs TensorFlow and Keras 3: pip install tensorflow-cpu "
            f"(import failed: {error})") from error
    if keras.config.backend() != "tensorflow":
        raise ImportError(f"reference compares against Keras's TensorFlow backend, but KERAS_BACKEND is "
                          f"{keras.config.backend()!r}: set KERAS_BACKEND=tensorflow")
    _keras = keras
    return keras


@contextlib.contextmanager
def _native_stderr_silenced(enabled: bool):
    if not enabled:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:  # no real file descriptor 2 (some embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def keras_dtype(dtype):
    """Run Keras in ``dtype``: sets ``floatx`` and the global dtype policy, restores both on exit.

    Build, compile *and* fit a float64 model inside it::

        with reference.keras_dtype("float64"):
            keras_model = reference.to_keras(gd_model)
            keras_model.fit(x, y)
    """
    keras = import_keras()
    dtype = np.dtype(dtype).name
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    previous_floatx, previous_policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield keras
    finally:
        keras.config.set_floatx(previous_floatx)
        keras.config.set_dtype_policy(previous_policy)


# --- gdcore -> Keras ----------------------------------------------------------------------


def to_keras(model: gdcore.Sequential, compile: bool = True):
    """The Keras twin of a built gdcore model: same layers, activations, dtype and current weights.

    When ``model`` is compiled and ``compile`` is true, the twin is compiled
    with the same optimizer hyperparameters and loss, and ``jit_compile=False``.
    The optimizer starts with empty state. For a float64 model, train the
    twin inside :func:`keras_dtype` (see there).
    """
    if not isinstance(model, gdcore.Model):
        raise TypeError(f"to_keras expects a gdcore model (Sequential or Model), got {type(model).__name__}")
    if not model.built:
        raise ValueError("to_keras: the model is not built; give it an Input(shape=...) or call fit/predict first")
    with keras_dtype(model.dtype) as keras:
        layers = [keras.Input(shape=model.input_shape, name="input")]
        for layer in model.dense_layers:
            if layer.activation.name not in SUPPORTED_ACTIVATIONS:
                raise Unsupported(f"layer {layer.name!r}: activation {layer.activation.name!r} has no Keras twin here; "
                                  f"supported: {', '.join(SUPPORTED_ACTIVATIONS)}")
            activation = _keras_activation(keras, layer.activation.name) if layer.activation_layer is None else \
                _keras_activation_layer(keras, layer.activation_layer)
            layers.append(keras.layers.Dense(layer.units, activation=activation,
                                             use_bias=layer.use_bias, trainable=layer.trainable, name=layer.name,
                                             kernel_regularizer=_keras_regularizer(keras, layer.kernel_regularizer),
                                             bias_regularizer=_keras_regularizer(keras, layer.bias_regularizer),
                                             activity_regularizer=_keras_regularizer(keras, layer.activity_regularizer),
                                             kernel_constraint=_keras_constraint(keras, layer.kernel_constraint),
                                             bias_constraint=_keras_constraint(keras, layer.bias_constraint)))
            if layer.folded is not None:  # the activation layer after it, as its own Keras layer
                layers.append(_keras_activation_layer(keras, layer.folded))
        twin = keras.Sequential(layers, name=model.name)
        twin.set_weights(model.get_weights())
        if compile and model.optimizer is not None and model.loss is not None:
            entries = [(_keras_metric(keras, metric, model.dtype), weighted)
                       for (_, metric), weighted in zip(model._metrics, model._metric_weighted)]
            twin.compile(optimizer=_keras_optimizer(keras, model.optimizer), loss=_keras_loss(keras, model.loss),
                         metrics=[entry for entry, weighted in entries if not weighted] or None,
                         weighted_metrics=[entry for entry, weighted in entries if weighted] or None,
                         jit_compile=False)
    return twin


def _keras_activation(keras, name: str):
    """Keras's activation for gdcore's entry ``name``: its name, or a callable where Keras has no name for it."""
    if name == "gelu_approximate":  # keras.activations.gelu's tanh form has no string
        return lambda x: keras.activations.gelu(x, approximate=True)
    return name


def _keras_loss(keras, loss):
    """Keras's loss for a gdcore entry: its name, or the configured object when it has options."""
    reduced = loss.reduction != "sum_over_batch_size"
    if not (loss.from_logits or loss.label_smoothing or reduced or loss.config_name or loss.dtype):
        return loss.name
    options = {"from_logits": loss.from_logits} if loss.targets != "values" else {}
    if loss.label_smoothing:
        options["label_smoothing"] = loss.label_smoothing
    if reduced:
        options["reduction"] = loss.reduction
    if loss.config_name:
        options["name"] = loss.config_name
    if loss.dtype:
        options["dtype"] = loss.dtype
    return getattr(keras.losses, loss.keras)(**options)


def _keras_metric(keras, metric, dtype):
    """Keras's metric for a compiled gdcore one, from its ``compile_config`` entry (:func:`gdcore.metrics.keras_config`,
    the one translation): a string as given (``"accuracy"`` makes the same pick in Keras), a function by its name,
    an object rebuilt from its class and config."""
    entry = gdcore.metrics.keras_config(metric, dtype)
    if isinstance(entry, str):
        return entry
    if entry["class_name"] == "function":
        return entry["config"]  # Keras wraps a metric function named by a string the same way, under that name
    return keras.metrics.get(entry)


def _keras_activation_layer(keras, layer):
    """Keras's activation layer of the same class and options as gdcore's ``layer``."""
    options = layer.get_config()
    if "activation" in options:
        options["activation"] = _keras_activation(keras, options["activation"])
    return getattr(keras.layers, type(layer).__name__)(**options)


def _keras_optimizer(keras, optimizer):
    """The Keras optimizer of the same rule (the table's Keras class name) and configuration."""
    try:
        config = optimizer.keras_config()
    except ValueError as error:
        raise Unsupported(f"optimizer {type(optimizer).__name__}: {error}") from None
    config = {key: (float(value) if isinstance(value, (float, np.floating)) else value) for key, value in config.items()}
    rate = config["learning_rate"]
    if isinstance(rate, gdcore.schedules.LearningRateSchedule):
        config["learning_rate"] = getattr(keras.optimizers.schedules, type(rate).__name__)(**rate.get_config())
    return getattr(keras.optimizers, type(optimizer).__name__)(**config)


# --- Keras -> gdcore ----------------------------------------------------------------------


def from_keras(keras_model, numerics: str | None = None, engine: str = "numba") -> gdcore.Sequential:
    """The gdcore twin of a Keras model made of Dense layers: same layers, dtype, weights, optimizer and loss.

    Accepts a ``keras.Sequential`` or a functional ``keras.Model`` that is a
    single chain ``Input -> Dense -> ... -> Dense``. Activations: linear,
    sigmoid, tanh, relu. When the Keras model is compiled, its optimizer
    (SGD with optional momentum/Nesterov, or Adam without AMSGrad, a constant
    float learning rate and no clipping, weight decay, EMA, loss scaling or
    gradient accumulation), loss (any of gdcore's, with the default
    ``sum_over_batch_size`` reduction) and metrics (as
    :func:`gdcore.metrics.from_keras_config` reads them) are copied; the
    optimizer's state is not (the twin starts as after ``compile``).

    ``numerics`` (default: :class:`gdcore.Sequential`'s) and ``engine`` are
    passed to the new model.

    Raises
    ------
    reference.Unsupported (a ValueError)
        Naming the first layer or setting gdcore cannot reproduce.
    """
    keras = import_keras()
    if not isinstance(keras_model, keras.Model):
        raise TypeError(f"from_keras expects a keras.Model or keras.Sequential, got {type(keras_model).__name__}")
    if len(keras_model.inputs or []) != 1 or len(keras_model.outputs or []) != 1:
        raise Unsupported(f"model {keras_model.name!r} has {len(keras_model.inputs or [])} inputs and "
                          f"{len(keras_model.outputs or [])} outputs; gdcore supports one input and one output")
    input_shape = tuple(keras_model.inputs[0].shape)
    if len(input_shape) != 2 or input_shape[1] is None:
        raise Unsupported(f"model {keras_model.name!r}: input shape {input_shape} is not (batch, n_features)")
    dense_layers, dtypes = [], set()
    for layer in keras_model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        _check_dense(keras, layer)
        dense_layers.append(layer)
        dtypes.add((layer.dtype_policy.variable_dtype, layer.dtype_policy.compute_dtype))
    if not dense_layers:
        raise Unsupported(f"model {keras_model.name!r} has no Dense layer")
    variable_dtype, compute_dtype = next(iter(dtypes))
    if len(dtypes) != 1 or variable_dtype != compute_dtype or variable_dtype not in ("float32", "float64"):
        raise Unsupported(f"model {keras_model.name!r}: dtype policies {sorted(dtypes)} (variable, compute); "
                          "gdcore needs one dtype, float32 or float64, for every layer")
    dtype = variable_dtype
    n_in = input_shape[1]
    for layer in dense_layers:
        kernel_rows = layer.kernel.shape[0]
        if kernel_rows != n_in:
            raise Unsupported(f"layer {layer.name!r} takes {kernel_rows} inputs but the layer before it gives {n_in}: "
                              "the model is not a single chain of Dense layers")
        n_in = layer.units
    options = {} if numerics is None else {"numerics": numerics}
    layers = [gdcore.layers.Dense(layer.units, activation=_activation_name(keras, layer), use_bias=layer.use_bias,
                                  trainable=layer.trainable, name=layer.name,
                                  kernel_regularizer=_gdcore_regularizer(keras, layer.kernel_regularizer),
                                  bias_regularizer=_gdcore_regularizer(keras, layer.bias_regularizer),
                                  activity_regularizer=_gdcore_regularizer(keras, layer.activity_regularizer),
                                  kernel_constraint=_gdcore_constraint(keras, layer.kernel_constraint),
                                  bias_constraint=_gdcore_constraint(keras, layer.bias_constraint))
              for layer in dense_layers]
    model = gdcore.Sequential([gdcore.Input(shape=(input_shape[1],)), *layers], dtype=dtype, engine=engine,
                              name=keras_model.name, **options)
    model.set_weights([np.asarray(weight) for layer in dense_layers for weight in layer.get_weights()])
    if getattr(keras_model, "compiled", False) and keras_model.optimizer is not None:
        _check_compile_config(keras_model)
        config = keras_model.get_compile_config() or {}
        try:
            metrics, weighted = ([gdcore.metrics.from_keras_config(entry) for entry in config.get(setting) or []]
                                 for setting in ("metrics", "weighted_metrics"))
        except ValueError as error:
            raise Unsupported(f"model {keras_model.name!r}: {error}") from None
        model.compile(optimizer=_gdcore_optimizer(keras, keras_model.optimizer, dtype),
                      loss=_gdcore_loss(keras, keras_model.loss), metrics=metrics or None,
                      weighted_metrics=weighted or None)
    return model


def _check_dense(keras, layer) -> None:
    if not isinstance(layer, keras.layers.Dense):
        raise Unsupported(f"layer {layer.name!r} is a {type(layer).__name__}; gdcore supports Dense layers only")
    for setting in ("kernel_constraint", "bias_constraint"):
        constraint = getattr(layer, setting, None)
        if constraint is not None and type(constraint).__name__ not in gdcore.constraints.CLASSES:
            raise Unsupported(f"layer {layer.name!r} has {setting}={constraint!r}; gdcore has "
                              f"{', '.join(gdcore.constraints.CLASSES)}")
    if getattr(layer, "lora_rank", None):
        raise Unsupported(f"layer {layer.name!r} has lora_rank={layer.lora_rank}; gdcore has no LoRA")
    for setting in ("kernel_regularizer", "bias_regularizer", "activity_regularizer"):
        regularizer = getattr(layer, setting, None)
        if regularizer is not None and type(regularizer).__name__ not in gdcore.regularizers.CLASSES:
            raise Unsupported(f"layer {layer.name!r} has {setting}={regularizer!r}; gdcore has "
                              f"{', '.join(gdcore.regularizers.CLASSES)}")
    _activation_name(keras, layer)


def _keras_regularizer(keras, regularizer):
    """The Keras twin of a gdcore regularizer (the same class and config)."""
    return None if regularizer is None else keras.regularizers.deserialize(gdcore.regularizers.serialize(regularizer))


def _keras_constraint(keras, constraint):
    """The Keras twin of a gdcore constraint (the same class and config)."""
    return None if constraint is None else keras.constraints.deserialize(gdcore.constraints.serialize(constraint))


def _gdcore_regularizer(keras, regularizer):
    return None if regularizer is None else gdcore.regularizers.deserialize(keras.regularizers.serialize(regularizer))


def _gdcore_constraint(keras, constraint):
    return None if constraint is None else gdcore.constraints.deserialize(keras.constraints.serialize(constraint))


def _activation_name(keras, layer) -> str:
    name = keras.activations.serialize(layer.activation)
    name = name if isinstance(name, str) else getattr(layer.activation, "__name__", repr(layer.activation))
    if name not in SUPPORTED_ACTIVATIONS:
        raise Unsupported(f"layer {layer.name!r} has activation {name!r}; supported: {', '.join(SUPPORTED_ACTIVATIONS)}")
    return name


def _check_compile_config(keras_model) -> None:
    config = keras_model.get_compile_config() or {}
    for setting in ("loss_weights",):
        if config.get(setting):
            raise Unsupported(f"model {keras_model.name!r} was compiled with {setting}={config[setting]!r}; "
                              f"from_keras does not translate {setting} yet")
    if config.get("steps_per_execution", 1) not in (1, None):
        raise Unsupported(f"steps_per_execution={config['steps_per_execution']}: gdcore has no such setting")


def _gdcore_optimizer(keras, optimizer, dtype: str):
    kind = type(optimizer).__name__
    classes = {rule.keras: gdcore.optimizers.OPTIMIZERS[rule.name] for rule in gdcore.optimizers.RULES}
    if kind not in classes or not isinstance(optimizer, getattr(keras.optimizers, kind)):
        raise Unsupported(f"optimizer {kind} is not supported; gdcore has {', '.join(classes)}")
    config = optimizer.get_config()
    learning_rate = config["learning_rate"]
    if not isinstance(learning_rate, (int, float)):
        raise Unsupported(f"optimizer {kind}: learning_rate={learning_rate!r} is a schedule; from_keras translates "
                          "constant learning rates only")
    if dtype == "float32":
        # Keras reports a float32 model's learning rate from its float32 variable (0.05 -> 0.05000000074505806);
        # the shortest decimal that rounds to the same float32 gives gdcore the same value, as the user wrote it.
        learning_rate = float(str(np.float32(learning_rate)))
    for setting, default in _UNSUPPORTED_OPTIMIZER_DEFAULTS.items():
        if config.get(setting, default) != default:
            raise Unsupported(f"optimizer {kind}: {setting}={config[setting]!r} is not translated by from_keras yet")
    cls = classes[kind]
    names = set(cls(learning_rate=1.0).keras_config())
    arguments = {name: value for name, value in config.items() if name in names}
    arguments["learning_rate"] = float(learning_rate)
    return cls(**{name: float(value) if isinstance(value, float) else value for name, value in arguments.items()})


def _gdcore_loss(keras, loss):
    if isinstance(loss, str):
        name = loss
    elif isinstance(loss, keras.losses.Loss):  # its options (reduction, from_logits, ...) as a .keras file holds them
        from gdcore.saving import _loss_from_config

        try:
            return _loss_from_config(keras.saving.serialize_keras_object(loss), "loss")
        except ValueError as error:
            raise Unsupported(str(error)) from None
    elif callable(loss):
        name = getattr(loss, "__name__", repr(loss))
    else:
        raise Unsupported(f"loss {loss!r} is not supported; supported: mse, mae")
    key = name.lower()
    if key not in SUPPORTED_LOSSES:
        raise Unsupported(f"loss {name!r} is not supported; supported: {', '.join(sorted(SUPPORTED_LOSSES))}")
    return SUPPORTED_LOSSES[key]


# --- training -------------------------------------------------------------------------


def run_keras(model: gdcore.Sequential, x, y, orders, batch_size: int, validation_data=None, x_predict=None,
              feed: str = "dataset") -> Trajectory:
    """Train the Keras twin of ``model`` (from its current weights) on the same batches gdcore sees.

    Epoch ``e`` is one ``fit(..., epochs=1)`` call on one compiled model,
    all inside :func:`keras_dtype`, on the rows ``x[orders[e]]`` in order:

    * ``feed="numpy"``: ``fit(x[p], y[p], batch_size=batch_size, shuffle=False)``,
      the call a user writes;
    * ``feed="dataset"`` (default): the same rows as a
      ``tf.data.Dataset.from_tensor_slices((x[p], y[p])).batch(batch_size)``.
      Same batches (the last one partial), bit-identical weights and history
      (``tests/test_reference_keras.py`` checks it), and 3 to 7 times faster:
      Keras's NumPy adapter rebuilds a tf.data pipeline at every call.

    Validation data, when given, is evaluated after every epoch in batches of
    ``batch_size`` (Keras's default ``validation_batch_size``). Records the
    weights, ``history['loss']`` (and ``val_loss``, and the compiled metrics) and one-batch predictions
    (``predict_on_batch``) on ``x_predict`` (default: the validation inputs,
    else ``x``) after every epoch. Training stops at the first epoch whose
    loss or weights are not finite (Keras itself would go on producing NaN).
    """
    if feed not in ("dataset", "numpy"):
        raise ValueError(f"feed must be 'dataset' or 'numpy', got {feed!r}")
    dtype = model.dtype
    x, y = np.asarray(x, dtype=dtype), np.asarray(y, dtype=dtype).reshape(len(x), -1)
    if x_predict is None:
        x_predict = validation_data[0] if validation_data is not None else x
    x_predict = np.asarray(x_predict, dtype=dtype)
    if validation_data is not None:
        validation_data = (np.asarray(validation_data[0], dtype=dtype),
                           np.asarray(validation_data[1], dtype=dtype).reshape(len(validation_data[0]), -1))
    twin = to_keras(model)
    with keras_dtype(dtype):
        import tensorflow as tf

        def batches(features, targets):
            return tf.data.Dataset.from_tensor_slices((features, targets)).batch(batch_size)

        if feed == "dataset":
            arguments = {"validation_data": None if validation_data is None else batches(*validation_data)}
        else:
            arguments = {"validation_data": validation_data, "batch_size": batch_size, "shuffle": False}
        trajectory = Trajectory("keras", dtype.name, weight_names(model), weights=[twin.get_weights()],
                                loss=[], val_loss=[] if validation_data is not None else None,
                                predictions=[np.asarray(twin.predict_on_batch(x_predict))])
        for epoch, order in enumerate(orders, start=1):
            data = batches(x[order], y[order]) if feed == "dataset" else (x[order], y[order])
            start = time.perf_counter()
            if feed == "dataset":
                history = twin.fit(data, epochs=1, verbose=0, shuffle=False, **arguments)
            else:
                history = twin.fit(*data, epochs=1, verbose=0, **arguments)
            trajectory.fit_seconds += time.perf_counter() - start
            weights = twin.get_weights()
            loss = history.history["loss"][0]
            if not (np.isfinite(loss) and finite(weights)):
                trajectory.diverged_at = epoch
                break
            trajectory.weights.append(weights)
            record_history(trajectory, history.history)
            trajectory.predictions.append(np.asarray(twin.predict_on_batch(x_predict)))
    return trajectory
