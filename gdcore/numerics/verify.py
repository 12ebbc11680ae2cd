"""Measure how closely the ``"tensorflow"`` profile matches the installed TensorFlow.

The profile's rules (:mod:`gdcore.numerics._tensorflow`, :mod:`gdcore.numerics.eigen`)
were read from Eigen's headers and probed on one machine; they depend on the
TensorFlow build and on the CPU (oneDNN picks FMA kernels at run time). This
module re-measures them: every operation, NumPy and Numba versions, against
the live TensorFlow op on random inputs whose magnitudes span 2^-8..2^8 so
that different summation orders round differently.
"""

import numpy as np
import pandas as pd

from gdcore._dtype import ulp_distance
from gdcore.numerics import _tensorflow, eigen

BATCH_SIZES = (1, 2, 7, 11, 20, 33, 100, 257, 1000)
INPUT_FEATURES = (1, 3, 8)
UNITS = (1, 3, 8, 16, 64)


def _import_tensorflow():
    try:
        import tensorflow as tf
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "verify_tensorflow_profile needs TensorFlow: pip install tensorflow-cpu"
        ) from error
    return tf


def _spread(rng, shape, dtype):
    return (rng.standard_normal(shape) * 2.0 ** rng.integers(-8, 8, shape)).astype(dtype)


def _shape_group(batch_size: int, units: int) -> str:
    if batch_size <= 10:
        batch = "B<=10"
    elif batch_size <= 100:
        batch = "11<=B<=100"
    else:
        batch = "B>=257"
    return f"{batch}, N={'1' if units == 1 else '>=2'}"


def _cases(tf, rng, dtype, batch_size, n_in, n_out):
    """Yield (operation, mine, theirs) for one random draw of one shape."""
    inputs = _spread(rng, (batch_size, n_in), dtype)
    kernel = _spread(rng, (n_in, n_out), dtype)
    delta = _spread(rng, (batch_size, n_out), dtype)
    profile = _tensorflow

    reference = tf.linalg.matmul(inputs, kernel).numpy()
    out = np.empty((batch_size, n_out), dtype)
    profile.matmul_loop(inputs, kernel, out)
    yield "matmul", profile.matmul(inputs, kernel), reference
    yield "matmul_loop", out, reference

    reference = tf.linalg.matmul(delta, kernel, transpose_b=True).numpy()
    out = np.empty((batch_size, n_in), dtype)
    profile.matmul_grad_input_loop(delta, kernel, out)
    yield "matmul_grad_input", profile.matmul_grad_input(delta, kernel), reference
    yield "matmul_grad_input_loop", out, reference

    reference = tf.linalg.matmul(inputs, delta, transpose_a=True).numpy()
    out = np.empty((n_in, n_out), dtype)
    profile.matmul_grad_kernel_loop(inputs, delta, out)
    yield "matmul_grad_kernel", profile.matmul_grad_kernel(inputs, delta), reference
    yield "matmul_grad_kernel_loop", out, reference

    column = np.ascontiguousarray(delta[:, 0])
    reference = np.asarray(tf.reduce_sum(column).numpy())
    yield "sum_vector", np.asarray(profile.sum_vector(column)), reference
    yield "sum_vector_loop", np.asarray(profile.sum_vector_loop(column)), reference

    # The bias gradient of Keras's Dense: BiasAddGrad for several units, reduce_sum of the column for one.
    if n_out == 1:
        reference = tf.reduce_sum(delta, axis=0).numpy()
    else:
        reference = tf.raw_ops.BiasAddGrad(out_backprop=delta).numpy()
    out = np.empty(n_out, dtype)
    profile.sum_columns_loop(delta, out)
    yield "sum_columns", profile.sum_columns(delta), reference
    yield "sum_columns_loop", out, reference
    if n_out >= 2:
        reference = tf.reduce_sum(delta, axis=0).numpy()
        out = np.empty(n_out, dtype)
        profile.reduce_sum_rows_loop(delta, out)
        yield "reduce_sum_rows", profile.reduce_sum_rows(delta), reference
        yield "reduce_sum_rows_loop", out, reference

    # Pre-activations over the whole interesting range, plus the tails.
    z = (rng.uniform(-1.0, 1.0, (batch_size, n_out)) * 10.0 ** rng.uniform(-3, 2.05, (batch_size, n_out))).astype(dtype)
    activations = (
        ("logistic", tf.math.sigmoid, tf.raw_ops.SigmoidGrad, eigen.logistic_tensorflow, eigen.logistic_tensorflow_loop,
         eigen.logistic_grad_tensorflow, eigen.logistic_grad_tensorflow_loop),
        ("tanh", tf.math.tanh, tf.raw_ops.TanhGrad, eigen.tanh_tensorflow, eigen.tanh_tensorflow_loop,
         eigen.tanh_grad_tensorflow, eigen.tanh_grad_tensorflow_loop),
    )
    for name, tf_forward, tf_grad, forward, forward_loop, grad, grad_loop in activations:
        reference = tf_forward(z).numpy()
        out = z.copy()
        forward_loop(out)
        yield name, forward(z), reference
        yield f"{name}_loop", out, reference
        y = reference
        reference = tf_grad(y=y, dy=delta).numpy()
        out = delta.copy()
        grad_loop(y, out)
        yield f"{name}_grad", grad(y, delta), reference
        yield f"{name}_grad_loop", out, reference

    # A Dense layer's activation inside a tf.function, as Keras's Dense writes it (matmul, then ops.add: AddV2):
    # fused into one op in float32 with two or more units; with one unit (no oneDNN) three ops.
    bias = _spread(rng, (n_out,), dtype)
    pre = np.ascontiguousarray(profile.matmul(inputs, kernel) + bias)
    for name, tf_activation, mine, loop in (("sigmoid", tf.math.sigmoid, profile.sigmoid, profile.sigmoid_loop),
                                            ("tanh", tf.math.tanh, profile.tanh, profile.tanh_loop)):
        reference = _dense_in_graph(tf, tf_activation)(inputs, kernel, bias).numpy()
        out = pre.copy()
        loop(out)
        yield f"dense_{name}", mine(pre), reference
        yield f"dense_{name}_loop", out, reference


_GRAPHS = {}


def _dense_in_graph(tf, activation):
    """``activation(x @ w + b)`` as a ``tf.function`` (one per activation, retraced per shape), Keras's Dense ops.

    Keras's Dense adds its bias with ``ops.add`` (AddV2), not ``bias_add``: on
    Eigen's float32 path TensorFlow fuses MatMul + BiasAdd into one contraction
    even for one unit, but leaves MatMul + AddV2 of one unit as two ops.
    """
    if activation not in _GRAPHS:
        _GRAPHS[activation] = tf.function(lambda x, w, b: activation(tf.linalg.matmul(x, w) + b))
    return _GRAPHS[activation]


def verify_tensorflow_profile(
    n_trials: int = 3,
    seed: int = 0,
    dtypes=("float32", "float64"),
    shapes=None,
) -> pd.DataFrame:
    """Compare every operation of the ``"tensorflow"`` profile with live TensorFlow.

    Parameters
    ----------
    n_trials : int
        Random draws per shape.
    seed : int
        Seed of the NumPy generator drawing the inputs.
    dtypes : sequence of str
        ``"float32"`` and/or ``"float64"``.
    shapes : iterable of (batch_size, input_features, units), optional
        Defaults to every combination of B in (1, 2, 7, 11, 20, 33, 100, 257, 1000),
        K in (1, 3, 8) and N in (1, 3, 8, 16, 64).

    Returns
    -------
    pandas.DataFrame
        One row per (operation, dtype, shape_group) with columns ``operation``,
        ``dtype``, ``shape_group``, ``cases`` (output values compared),
        ``bit_identical`` (how many had the same bits) and ``max_ulp``.
        Operations ending in ``_loop`` are the Numba versions. ``df.attrs["machine"]``
        is :meth:`~gdcore.numerics.CPUInfo.summary` of this machine: the cache
        sizes, float32 code path and thread count the profile derived.
    """
    tf = _import_tensorflow()
    if shapes is None:
        shapes = [(b, k, n) for b in BATCH_SIZES for k in INPUT_FEATURES for n in UNITS]
    rng = np.random.default_rng(seed)
    tally = {}
    for dtype_name in dtypes:
        dtype = np.dtype(dtype_name)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtypes must contain 'float32' or 'float64', got {dtype_name!r}")
        for batch_size, n_in, n_out in shapes:
            group = _shape_group(batch_size, n_out)
            for _ in range(n_trials):
                for operation, mine, theirs in _cases(tf, rng, dtype, batch_size, n_in, n_out):
                    distance = ulp_distance(np.asarray(mine, dtype), np.asarray(theirs, dtype)).ravel()
                    row = tally.setdefault((operation, dtype.name, group), [0, 0, 0])
                    row[0] += distance.size
                    row[1] += int(np.count_nonzero(distance == 0))
                    row[2] = max(row[2], int(distance.max(initial=0)))
    records = [
        {"operation": op, "dtype": dt, "shape_group": group, "cases": c, "bit_identical": same, "max_ulp": ulp}
        for (op, dt, group), (c, same, ulp) in tally.items()
    ]
    from gdcore.numerics.machine import cpu_info

    frame = pd.DataFrame.from_records(records).sort_values(["operation", "dtype", "shape_group"], ignore_index=True)
    frame.attrs["machine"] = cpu_info().summary()  # what the profile derived here (format_report prints it all)
    return frame


def format_report(df: pd.DataFrame) -> str:
    """A short text table: this machine as the profile sees it, then one line per row of
    :func:`verify_tensorflow_profile`, mismatches flagged."""
    from gdcore.numerics.machine import cpu_info

    lines = [str(cpu_info()), ""]
    lines += [f"{'operation':<24} {'dtype':<8} {'shape group':<20} {'identical':>17} {'max ulp':>8}"]
    for row in df.itertuples(index=False):
        flag = "" if row.bit_identical == row.cases else "  <-- differs"
        lines.append(
            f"{row.operation:<24} {row.dtype:<8} {row.shape_group:<20} "
            f"{row.bit_identical:>8}/{row.cases:<8} {row.max_ulp:>8}{flag}"
        )
    exact = int((df["bit_identical"] == df["cases"]).sum())
    lines.append(f"{exact} of {len(df)} groups bit-identical")
    return "\n".join(lines)


# --- Keras's random streams --------------------------------------------------------------------------

_STREAM_INITIALIZERS = [
    ("RandomNormal", {"mean": 0.0, "stddev": 0.05}), ("RandomUniform", {"minval": -0.05, "maxval": 0.05}),
    ("TruncatedNormal", {"mean": 0.0, "stddev": 0.05}), ("GlorotUniform", {}), ("GlorotNormal", {}),
    ("HeNormal", {}), ("HeUniform", {}), ("LecunNormal", {}), ("LecunUniform", {}),
    ("VarianceScaling", {"scale": 1.3, "mode": "fan_avg", "distribution": "uniform"}), ("Orthogonal", {}),
]


def verify_random_streams(seeds=(0, 123, 987654321), dtypes=("float32", "float64"),
                          shapes=((1, 1), (1, 8), (8, 1), (3, 5), (100, 7))) -> pd.DataFrame:
    """Compare :mod:`gdcore.random`'s copy of Keras's random streams with the installed Keras, draw by draw.

    Streams: TensorFlow's stateless uniform, normal and truncated normal;
    each seeded Keras initializer; Dense's unseeded default after
    ``keras.utils.set_random_seed``; and the sample orders ``fit(shuffle=True)``
    and ``fit(shuffle="batch")`` visit (recorded from a Keras model's
    ``train_step``). Returns one row per (stream, dtype) with ``cases`` (values
    compared) and ``bit_identical``; ``df.attrs["versions"]`` names the
    TensorFlow and Keras whose streams were checked.
    """
    tf = _import_tensorflow()
    import keras

    from gdcore import initializers
    from gdcore import random as keras_random

    tally = {}

    def count(stream, dtype, mine, theirs):
        mine, theirs = np.asarray(mine), np.asarray(theirs)
        row = tally.setdefault((stream, dtype), [0, 0])
        row[0] += mine.size
        if mine.shape == theirs.shape and mine.dtype == theirs.dtype:  # bits compared: -0.0 is not 0.0
            bits = np.dtype(f"u{mine.itemsize}")
            row[1] += int(np.count_nonzero(mine.reshape(-1).view(bits) == theirs.reshape(-1).view(bits)))

    for dtype in dtypes:
        for seed in seeds:
            for name, tf_draw, draw in [("stateless_uniform", tf.random.stateless_uniform, keras_random.stateless_uniform),
                                        ("stateless_normal", tf.random.stateless_normal, keras_random.stateless_normal),
                                        ("stateless_truncated_normal", tf.random.stateless_truncated_normal,
                                         keras_random.stateless_truncated_normal)]:
                theirs = tf_draw((1000,), tf.constant((seed, 0), tf.int64), dtype=dtype).numpy()
                count(name, dtype, draw((1000,), (seed, 0), dtype=dtype), theirs)
            for name, kwargs in _STREAM_INITIALIZERS:
                for shape in shapes:
                    theirs = getattr(keras.initializers, name)(**kwargs, seed=seed)(shape, dtype=dtype)
                    count(name, dtype, getattr(initializers, name)(**kwargs, seed=seed)(shape, dtype), theirs)
    for seed in seeds:
        keras.utils.set_random_seed(seed)
        theirs = keras.initializers.GlorotUniform()((4, 8))
        keras_random.set_random_seed(seed)
        count("unseeded GlorotUniform", "float32", initializers.GlorotUniform()((4, 8)), theirs)
        for shuffle, n, batch_size in [(True, 100, 20), (True, 37, 5), ("batch", 100, 30)]:
            theirs = _keras_visits(keras, tf, seed, n, batch_size, 2, shuffle)
            keras_random.set_random_seed(seed)
            count(f"fit(shuffle={shuffle!r}) orders", "int64", keras_random.shuffle_orders(n, 2, shuffle, batch_size),
                  theirs)
    records = [{"stream": stream, "dtype": dtype, "cases": cases, "bit_identical": same}
               for (stream, dtype), (cases, same) in tally.items()]
    frame = pd.DataFrame.from_records(records)
    frame.attrs["versions"] = f"TensorFlow {tf.__version__}, Keras {keras.__version__}"
    return frame


def _keras_visits(keras, tf, seed, n, batch_size, epochs, shuffle) -> np.ndarray:
    """The sample indices Keras's ``fit`` visits per epoch (x is arange(n), recorded in ``train_step``)."""
    seen = []

    class Recorder(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            seen.append(np.asarray(data[0])[:, 0].astype(np.int64))
            return {"loss": tf.constant(0.0)}

    keras.utils.set_random_seed(seed)
    model = Recorder()
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
    x = np.arange(n, dtype="float32")[:, None]
    model.fit(x, x, batch_size=batch_size, epochs=epochs, shuffle=shuffle, verbose=0)
    steps = len(seen) // epochs
    return np.stack([np.concatenate(seen[e * steps:(e + 1) * steps]) for e in range(epochs)])
