"""gdcore.random and gdcore.initializers: Keras 3's random streams (TensorFlow backend), bit for bit.

Unit tests first (no TensorFlow): Philox against the published Random123
known-answer vectors, the conversions and seed rules by hand, the C
library's maths in Box-Muller. Then live tests (``pytest.mark.tensorflow``)
that draw the same thing from TensorFlow / Keras and assert ``np.array_equal``:
the stateless ops, every initializer for several shapes, seeds and both
dtypes, unseeded initializers under ``set_random_seed``, the global
``SeedGenerator``, and the sample orders ``fit(shuffle=...)`` visits.
"""

import ctypes
import ctypes.util
import math

import numpy as np
import pytest

import gdcore
from gdcore import initializers, random as keras_random

tensorflow = pytest.mark.tensorflow


def _mismatch(mine, theirs) -> str:
    mine, theirs = np.asarray(mine), np.asarray(theirs)
    if mine.shape != theirs.shape or mine.dtype != theirs.dtype:
        return f"mine {mine.dtype}{mine.shape} vs theirs {theirs.dtype}{theirs.shape}"
    bad = np.flatnonzero(mine.ravel() != theirs.ravel())
    if not bad.size:
        return "equal"
    i = bad[0]
    return f"{bad.size} of {mine.size} differ; first at flat index {i}: mine {mine.ravel()[i]!r} vs theirs {theirs.ravel()[i]!r}"


# --- Philox and the conversions, by hand ---------------------------------------------------------

# Random123 1.14 (DEShawResearch/random123), tests/kat_vectors, "philox4x32 10" lines:
# counter words 0-3, key words 0-1, expected output words 0-3.
RANDOM123_KAT = [
    ("00000000 00000000 00000000 00000000", "00000000 00000000", "6627e8d5 e169c58d bc57ac4c 9b00dbd8"),
    ("ffffffff ffffffff ffffffff ffffffff", "ffffffff ffffffff", "408f276d 41c83b0e a20bc7c6 6d5451fd"),
    ("243f6a88 85a308d3 13198a2e 03707344", "a4093822 299f31d0", "d16cfe09 94fdcceb 5001e420 24126ea1"),
]


def _words(text):
    return np.array([int(word, 16) for word in text.split()], dtype=np.uint32)


@pytest.mark.parametrize("counter, key, expected", RANDOM123_KAT)
def test_philox_matches_random123_known_answers(counter, key, expected):
    assert np.array_equal(keras_random.philox_4x32(_words(counter), _words(key)), _words(expected))


def test_philox_stream_adds_the_block_index_to_the_128_bit_counter():
    key = np.array([7, 9], dtype=np.uint32)
    counter = np.array([0xFFFFFFFE, 0xFFFFFFFF, 5, 0], dtype=np.uint32)
    stream = keras_random.philox_stream(key, counter, 3, start=1)
    # Block 1 is counter + 1 = (ffffffff, ffffffff, 5, 0); block 2 carries into word 2.
    expected = keras_random.philox_4x32([[0xFFFFFFFF, 0xFFFFFFFF, 5, 0], [0, 0, 6, 0], [1, 0, 6, 0]], key)
    assert np.array_equal(stream, expected)


def test_uint_to_float_conversions_are_the_mantissa_scaled():
    bits = np.array([0, 1, 0x7FFFFF, 0xFF800000, 0xFFFFFFFF], dtype=np.uint32)
    assert keras_random.uint32_to_float(bits).tolist() == [0.0, 2.0**-23, 1 - 2.0**-23, 0.0, 1 - 2.0**-23]
    assert keras_random.uint64_to_double([0xFFF00000, 0x000FFFFF], [1, 0xFFFFFFFF]).tolist() == [2.0**-52, 1 - 2.0**-52]


def test_seed_123_gives_the_number_keras_prints():
    # keras.initializers.RandomNormal(0, 0.05, 123)(shape=(1, 1)) prints 0.03916308 in every process:
    # seed (123, 0) -> key and counter -> the first Philox block -> Box-Muller of its words 0 and 1.
    key, counter = keras_random.stateless_key_counter((123, 0))
    block = keras_random.philox_4x32(counter, key)
    z0, _ = keras_random.box_muller_float(block[:1], block[1:2])
    assert np.float32(z0[0]) * np.float32(0.05) == np.float32("0.03916308")
    assert initializers.RandomNormal(0, 0.05, 123)((1, 1))[0, 0] == np.float32("0.03916308")


def test_box_muller_uses_the_c_library_for_every_float_input():
    """logf, sqrtf, sinf and cosf of glibc (what TensorFlow's kernel calls), over all 2**23 possible inputs.

    NumPy's float32 log/sin/cos differ from glibc by an ulp on a fifth of these inputs, so the kernel
    must not use them. The reference here calls libm through ctypes, compiled by Numba.
    """
    from numba import njit

    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    unary = ctypes.CFUNCTYPE(ctypes.c_float, ctypes.c_float)
    logf, sqrtf, sinf, cosf = (unary((name, libm)) for name in ("logf", "sqrtf", "sinf", "cosf"))

    @njit
    def reference(x0, x1):
        f0 = np.empty(x0.size, np.float32)
        f1 = np.empty(x0.size, np.float32)
        for i in range(x0.size):
            u1 = max(np.float32((x0[i] & 0x7FFFFF) * 2.0**-23), np.float32(1e-7))
            v1 = np.float32(2.0 * math.pi * ((x1[i] & 0x7FFFFF) * 2.0**-23))
            r = sqrtf(np.float32(-2.0) * logf(u1))
            f0[i] = sinf(v1) * r
            f1[i] = cosf(v1) * r
        return f0, f1

    x0 = np.arange(1 << 23, dtype=np.uint32)
    x1 = np.random.default_rng(0).permutation(x0)
    mine, theirs = keras_random.box_muller_float(x0, x1), reference(x0, x1)
    assert np.array_equal(mine[0], theirs[0]) and np.array_equal(mine[1], theirs[1])
    # glibc's sincosf (the call on Linux) gives sinf's and cosf's values.
    sincosf = libm.sincosf
    sincosf.argtypes = [ctypes.c_float, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]
    s, c = ctypes.c_float(), ctypes.c_float()
    for v in np.random.default_rng(1).uniform(0, 2 * np.pi, 20000).astype(np.float32):
        sincosf(float(v), ctypes.byref(s), ctypes.byref(c))
        assert (np.float32(s.value), np.float32(c.value)) == (np.float32(sinf(float(v))), np.float32(cosf(float(v))))


def test_keras_seed_rules():
    assert keras_random.keras_seed(123) == (123, 0)
    assert keras_random.keras_seed(2**31 + 5) == ((2**31 + 5) % (2**31 - 2), 0)  # floormod by int32.max - 1
    assert keras_random.keras_seed(-1) == (2**31 - 3, 0)
    generator = keras_random.SeedGenerator(1000)
    assert [keras_random.keras_seed(generator) for _ in range(3)] == [(1000, 0), (1000, 1), (1000, 2)]
    unordered = keras_random.SeedGenerator(7)
    assert unordered.next(ordered=False).tolist() == [7, 0]
    assert unordered.state.tolist() == [8 * 5387 % 933199, 5387]


def test_set_random_seed_seeds_python_random_and_clear_session_keeps_it():
    import random

    keras_random.set_random_seed(5)
    first = random.Random(5).randint(1, 10**9)
    assert keras_random.make_default_seed() == first
    assert keras_random.get_random_seed() == 5 and keras_random.tensorflow_seed() == 5
    keras_random.clear_session()
    assert keras_random.get_random_seed() is None and keras_random.tensorflow_seed() == 5
    keras_random.set_random_seed(5)
    assert initializers.GlorotUniform()._keras_seed == first


def test_shuffle_kernel_reserves_ceil_n_minus_1_over_4_blocks_per_call():
    kernel = keras_random.ShuffleKernel(123, 0)
    first, second = kernel(10), kernel(10)
    assert kernel.position == 2 * 3 and sorted(first) == list(range(10)) and not np.array_equal(first, second)
    again = keras_random.ShuffleKernel(123, 0)
    again.position = 3
    assert np.array_equal(again(10), second)
    assert kernel(1).tolist() == [0] and kernel.position == 6  # one row: nothing reserved
    # By hand: i = 0..n-2 swaps with i + w_i mod (n - i), w the words of the reserved blocks.
    words = keras_random.philox_stream(np.array([123, 0]), np.zeros(4), 1).ravel()
    order = list(range(4))
    for i in range(3):
        j = i + int(words[i]) % (4 - i)
        order[i], order[j] = order[j], order[i]
    assert keras_random.ShuffleKernel(123, 0)(4).tolist() == order


def test_op_seeds_and_validation_split():
    assert keras_random.op_seeds(None, 123) == (123, 0)
    assert keras_random.op_seeds(None, 0) == (0, 2**31 - 1)  # (0, 0) would mean "random" to the kernel
    assert keras_random.op_seeds(None, 2**31 + 1) == (2, 0)
    keras_random.set_tensorflow_seed(None)
    with pytest.raises(ValueError, match="set_random_seed"):
        keras_random.op_seeds(None)  # no global seed: TensorFlow would shuffle at random
    assert keras_random.op_seeds(5) == (87654321, 5)
    assert keras_random.validation_split_at(100, 0.2) == 80 and keras_random.validation_split_at(37, 0.2) == 29
    with pytest.raises(ValueError, match="validation_split"):
        keras_random.validation_split_at(1, 0.5)  # no training row left


def test_keras3_orders_repeat_and_keras2_orders_advance():
    orders = keras_random.shuffle_orders(50, 3, True, 20, seed=9)
    assert all(np.array_equal(order, orders[0]) for order in orders)
    legacy = keras_random.shuffle_orders(50, 3, True, 20, seed=9, keras_version=2)
    assert np.array_equal(legacy[0], orders[0]) and not np.array_equal(legacy[1], legacy[0])
    batched = keras_random.shuffle_orders(50, 1, "batch", 20, seed=9)[0]
    assert [sorted(batched[s:s + 20]) for s in (0, 20, 40)] == [list(range(s, min(s + 20, 50))) for s in (0, 20, 40)]
    assert np.array_equal(keras_random.shuffle_orders(5, 2, False, seed=9), [[0, 1, 2, 3, 4]] * 2)


def test_seed_notebook_numbers_from_keras2_orders():
    """The seed notebook printed [[1.0167941]], [1.7801245] under tf.keras 2: Keras's initial kernel
    (RandomNormal(0, 0.05, 123): 0.03916308) trained on tf.keras 2's orders for tf.random.set_seed(123)
    gives them to the last bit. Keras 3's orders (the same permutation every epoch) give other numbers."""
    train = gdcore.datasets.make_regression_dataset(n_samples=100, noise=1.25, random_state=42)
    x, y = train[["X"]].to_numpy(), train["y"].to_numpy()
    results = {}
    for version in (2, 3):
        model = gdcore.Sequential([gdcore.Input(shape=(1,)), gdcore.layers.Dense(
            1, kernel_initializer=initializers.RandomNormal(0, 0.05, 123))])
        model.compile(optimizer=gdcore.optimizers.SGD(learning_rate=0.01), loss="mean_squared_error")
        for order in keras_random.shuffle_orders(100, 25, True, 20, seed=123, keras_version=version):
            model.fit(x[order], y[order], batch_size=20, epochs=1, shuffle=False, verbose=0)
        results[version] = [w.ravel().tolist() for w in model.get_weights()]
    assert results[2] == [[np.float32("1.0167941")], [np.float32("1.7801245")]]
    assert results[3] == [[np.float32("1.0373392")], [np.float32("1.7691401")]]


def test_unseeded_initializer_draws_from_a_numpy_generator_when_given_one():
    init = initializers.GlorotUniform()
    a = init((4, 3), "float64", np.random.default_rng(1))
    limit = math.sqrt(6 / 7)
    assert np.array_equal(a, np.random.default_rng(1).uniform(-limit, limit, (4, 3)))
    assert np.array_equal(init((4, 3), "float32"), init((4, 3), "float32", keras_random.KERAS))  # Keras's stream
    seeded = initializers.GlorotUniform(seed=3)
    assert np.array_equal(seeded((4, 3), "float32", np.random.default_rng(1)), seeded((4, 3), "float32"))


def test_names_and_configs():
    for name, cls in [("glorot_uniform", initializers.GlorotUniform), ("he_normal", initializers.HeNormal),
                      ("LecunUniform", initializers.LecunUniform), ("normal", initializers.RandomNormal),
                      ("orthogonal", initializers.Orthogonal), ("identity", initializers.Identity)]:
        assert type(initializers.get(name)) is cls
    init = initializers.get({"class_name": "VarianceScaling", "config": {"scale": 2.0, "mode": "fan_out", "seed": 4}})
    assert init.get_config() == {"seed": 4, "scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal",
                                 "input_axes": None, "output_axes": None}
    with pytest.raises(ValueError, match="unknown initializer 'he_normalish'; known: .*glorot_uniform"):
        initializers.get("he_normalish")


def test_orthogonal_is_orthogonal_at_any_size():
    for shape in [(48, 48), (300, 120), (20, 300)]:
        q = initializers.Orthogonal(seed=1)(shape, "float64")
        gram = q.T @ q if shape[0] >= shape[1] else q @ q.T
        assert np.allclose(gram, np.eye(min(shape)), atol=1e-12)


# --- live: TensorFlow and Keras ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras():
    from reference.keras_driver import import_keras

    return import_keras()


@pytest.fixture(scope="module")
def tf(keras):
    import tensorflow

    return tensorflow


@tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stateless_ops_match_tensorflow(tf, dtype):
    ops = [(tf.random.stateless_uniform, keras_random.stateless_uniform, {"minval": -0.3, "maxval": 0.7}),
           (tf.random.stateless_normal, keras_random.stateless_normal, {"mean": 0.1, "stddev": 0.05}),
           (tf.random.stateless_truncated_normal, keras_random.stateless_truncated_normal, {"mean": 0.0, "stddev": 2.0})]
    cases = [((123, 0), (1 << 20,)), ((0, 0), (7,)), ((-7, 3), (5, 3)), ((2**31 - 2, 2**40), (1001,))]
    for seed, shape in cases:
        for theirs_fn, mine_fn, kwargs in ops:
            theirs = theirs_fn(shape, tf.constant(seed, tf.int64), dtype=dtype, **kwargs).numpy()
            mine = mine_fn(shape, seed, dtype=dtype, **kwargs)
            assert np.array_equal(mine, theirs), f"{mine_fn.__name__} {dtype} seed={seed} shape={shape}: {_mismatch(mine, theirs)}"


RANDOM_INITIALIZERS = [
    ("RandomNormal", {"mean": 0.1, "stddev": 0.3}), ("RandomUniform", {"minval": -0.3, "maxval": 0.7}),
    ("TruncatedNormal", {"mean": 0.0, "stddev": 0.5}), ("GlorotUniform", {}), ("GlorotNormal", {}),
    ("HeNormal", {}), ("HeUniform", {}), ("LecunNormal", {}), ("LecunUniform", {}),
    ("VarianceScaling", {"scale": 0.7, "mode": "fan_out", "distribution": "untruncated_normal"}),
    ("VarianceScaling", {"scale": 1.3, "mode": "fan_avg", "distribution": "uniform"}),
    ("VarianceScaling", {"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal"}),
    ("Orthogonal", {"gain": 1.5}),
]
# Odd sizes, single rows and columns, a GEMV long enough to be blocked (130 rows), large 2-D, 3-D.
SHAPES = [(1, 1), (3, 5), (7, 2), (1, 8), (100, 1), (130, 40), (47, 47), (257, 301), (3, 4, 5)]


@tensorflow
@pytest.mark.parametrize("name, kwargs", RANDOM_INITIALIZERS, ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_seeded_initializers_match_keras(keras, name, kwargs, dtype):
    for shape in SHAPES:
        if name == "Orthogonal" and min(math.prod(shape[:-1]), shape[-1]) >= initializers.EIGEN_QR_BLOCK_SIZE:
            continue  # see test_orthogonal_from_48_columns_is_close
        for seed in (123, 0, 987654321):
            theirs = np.asarray(getattr(keras.initializers, name)(**kwargs, seed=seed)(shape, dtype=dtype))
            mine = getattr(initializers, name)(**kwargs, seed=seed)(shape, dtype)
            assert np.array_equal(mine, theirs) and mine.dtype == theirs.dtype, \
                f"{name}({kwargs}, seed={seed}){shape} {dtype}: {_mismatch(mine, theirs)}"
    assert getattr(initializers, name)(**kwargs, seed=5).get_config() == getattr(keras.initializers, name)(
        **kwargs, seed=5).get_config()


@tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_constant_initializers_match_keras(keras, dtype):
    # Constant's value goes through float32 (ops.cast of a Python float), Identity's gain does not.
    for name, kwargs, shapes in [("Constant", {"value": 0.1}, [(3, 5), (7,)]), ("Identity", {"gain": 0.3}, [(3, 5), (4, 4)]),
                                 ("Zeros", {}, [(2, 3)]), ("Ones", {}, [(2, 3)])]:
        for shape in shapes:
            theirs = np.asarray(getattr(keras.initializers, name)(**kwargs)(shape, dtype=dtype))
            mine = getattr(initializers, name)(**kwargs)(shape, dtype)
            assert np.array_equal(mine, theirs) and mine.dtype == theirs.dtype, f"{name}{shape} {dtype}: {_mismatch(mine, theirs)}"


@tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_orthogonal_from_48_columns_is_close(keras, dtype):
    """From 48 reflectors on Eigen factors and forms Q by blocks (matrix products): not reproduced bit for bit."""
    eps = np.finfo(dtype).eps
    for shape in [(48, 48), (64, 300), (100, 100)]:
        theirs = np.asarray(keras.initializers.Orthogonal(seed=1)(shape, dtype=dtype))
        mine = initializers.Orthogonal(seed=1)(shape, dtype)
        assert np.abs(mine.astype(float) - theirs).max() <= 32 * eps


@tensorflow
def test_unseeded_initializers_follow_python_random_in_construction_order(keras):
    for seed in (0, 123):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dropout(0.1),
                                  keras.layers.Dense(5), keras.layers.Dense(1, kernel_initializer="he_normal")])
        theirs = model.get_weights()[0::2]
        keras_random.set_random_seed(seed)
        # Constructed in Keras's order; Dropout's SeedGenerator(None) takes a seed too.
        built = [initializers.get("glorot_uniform"), keras_random.SeedGenerator(), initializers.get("glorot_uniform"),
                 initializers.get("he_normal")]
        mine = [built[0]((3, 8)), built[2]((8, 5)), built[3]((5, 1))]
        for index, (a, b) in enumerate(zip(mine, theirs)):
            assert np.array_equal(a, b), f"seed {seed}, kernel {index}: {_mismatch(a, b)}"


@tensorflow
def test_global_seed_generator_and_clear_session_match_keras(keras):
    keras.utils.set_random_seed(42)
    theirs = [keras.random.normal((5,)), keras.random.uniform((3,)), keras.random.normal((2,), seed=keras.random.SeedGenerator(8))]
    keras_random.set_random_seed(42)
    mine = [keras_random.normal((5,)), keras_random.uniform((3,)), keras_random.normal((2,), seed=keras_random.SeedGenerator(8))]
    for a, b in zip(mine, theirs):
        assert np.array_equal(a, np.asarray(b)), _mismatch(a, np.asarray(b))
    keras.utils.set_random_seed(7)
    keras.random.normal((1,))
    keras.backend.clear_session()
    theirs = [np.asarray(keras.random.normal((4,))), np.asarray(keras.initializers.GlorotUniform()((2, 3)))]
    keras_random.set_random_seed(7)
    keras_random.normal((1,))
    keras_random.clear_session()
    mine = [keras_random.normal((4,)), initializers.GlorotUniform()((2, 3))]
    for a, b in zip(mine, theirs):
        assert np.array_equal(a, b), _mismatch(a, b)
    from keras.src.utils.rng_utils import get_random_seed  # not exported by keras.utils

    assert get_random_seed() is None and keras_random.get_random_seed() is None


@pytest.fixture(scope="module")
def recorder(keras, tf):
    class Recorder(keras.Model):
        """Records the first feature of every batch train_step sees (x is arange(n): the sample indices)."""

        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)
            self.seen = []

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            self.seen.append(np.asarray(data[0])[:, 0].astype(np.int64))
            return {"loss": tf.constant(0.0)}

    def visited(seed, n, batch_size, epochs, shuffle, validation_split=0.0):
        keras.utils.set_random_seed(seed)
        model = Recorder()
        model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
        x = np.arange(n, dtype="float32")[:, None]
        model.fit(x, x, batch_size=batch_size, epochs=epochs, shuffle=shuffle, validation_split=validation_split, verbose=0)
        steps = len(model.seen) // epochs
        return np.stack([np.concatenate(model.seen[e * steps:(e + 1) * steps]) for e in range(epochs)])

    return visited


@tensorflow
@pytest.mark.parametrize("seed", [0, 123])
@pytest.mark.parametrize("n, batch_size, shuffle, validation_split",
                         [(100, 30, True, 0.0), (37, 5, True, 0.2), (37, 5, "batch", 0.0), (257, 64, "batch", 0.2)])
def test_shuffle_orders_are_the_ones_fit_visits(recorder, seed, n, batch_size, shuffle, validation_split):
    theirs = recorder(seed, n, batch_size, 3, shuffle, validation_split)
    keras_random.set_random_seed(seed)
    n_train = keras_random.validation_split_at(n, validation_split) if validation_split else n
    mine = keras_random.shuffle_orders(n_train, 3, shuffle, batch_size)
    assert np.array_equal(mine, theirs), f"epoch orders: {_mismatch(mine, theirs)}"


@tensorflow
@pytest.mark.parametrize("seed", [0, 123])
def test_compiled_fit_trains_on_the_same_orders(keras, seed):
    """A graph-compiled fit(shuffle=True) ends with the weights of one fit per epoch on x[order], shuffle=False."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(23, 2)).astype("float32")
    y = (x @ np.array([[2.0], [-1.0]]) + 0.5).astype("float32")

    def model():
        twin = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="ones")])
        twin.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        return twin

    keras.utils.set_random_seed(seed)
    shuffled = model()
    shuffled.fit(x, y, batch_size=5, epochs=3, shuffle=True, verbose=0)
    imposed = model()
    keras_random.set_random_seed(seed)
    for order in keras_random.shuffle_orders(23, 3, True, 5):
        imposed.fit(x[order], y[order], batch_size=5, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(shuffled.get_weights(), imposed.get_weights()):
        assert np.array_equal(a, b), _mismatch(b, a)


@tensorflow
def test_verify_random_streams_reports_every_stream_identical():
    from gdcore.numerics import verify_random_streams

    report = verify_random_streams(seeds=(7,), shapes=((3, 5),))
    assert len(report) == 31 and (report["bit_identical"] == report["cases"]).all(), report.to_string()
    assert report.attrs["versions"].startswith("TensorFlow ")
