"""Classification training speed: gdcore against Keras, scikit-learn and JAX, side by side in one run.

Usage::

    python benchmarks/bench_classification.py [--quick] [--with-keras-large] [--output benchmarks/results/NAME.md]

Workloads (float32, every run complete training from the same initial weights):

1. the logistic neuron, ``Dense(1, sigmoid)`` + binary cross-entropy, on the
   seed's curve labelled by a threshold (``make_classification_dataset``,
   100 samples), Adam at 0.1, batch 20, 25 epochs;
2. a 2-8-3 network, ``Dense(8, sigmoid) -> Dense(3, softmax)`` + sparse
   categorical cross-entropy, on ``make_three_class_dataset`` (150 samples),
   Adam at 0.05, batch 20, 25 epochs;
3. both at 1,000,000 samples (the same generators), one epoch, batch 32
   (Keras only with ``--with-keras-large``: about a minute per run).

Peers: Keras ``fit`` (``jit_compile=False``), ``MLPClassifier.partial_fit``
(one call per epoch; its own initialisation; for the logistic neuron a
1-unit identity hidden layer, as it has no zero-hidden-layer network),
``SGDClassifier.partial_fit`` (logistic neuron only, batch 1 by construction:
scikit-learn's own loop), and JAX (jit + ``lax.scan``) when installed. Timing
is ``bench_training.measure``'s: medians over rounds of back-to-back blocks,
ratios are peer time / gdcore time (Numba engine, plain numerics). The last
column is each trained model's accuracy on its training data.
"""

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import peers  # noqa: E402
from bench_training import KERAS, Implementation, _cell, machine_lines, measure  # noqa: E402

REFERENCE = "gdcore, Numba engine"


@dataclass(frozen=True)
class Task:
    """One classification workload: data (float32 x, int labels), network, optimizer and schedule."""

    name: str
    x: np.ndarray
    labels: np.ndarray
    hidden_units: int | None  # None: the logistic neuron
    n_classes: int
    learning_rate: float
    batch_size: int
    epochs: int
    initial_weights: list = field(repr=False)

    @property
    def loss(self) -> str:
        return "binary_crossentropy" if self.n_classes == 2 else "sparse_categorical_crossentropy"

    @property
    def y(self) -> np.ndarray:
        return self.labels.astype(np.float32).reshape(-1, 1) if self.n_classes == 2 else self.labels

    def warm_up_slice(self):
        rows = min(len(self.x), 4096 + len(self.x) % self.batch_size)
        return self.x[:rows], self.y[:rows]


def _layers(task_like, gdcore_or_keras):
    units = 1 if task_like.n_classes == 2 else task_like.n_classes
    output = "sigmoid" if task_like.n_classes == 2 else "softmax"
    layers = [gdcore_or_keras.Input(shape=(task_like.x.shape[1],))]
    if task_like.hidden_units is not None:
        layers.append(gdcore_or_keras.layers.Dense(task_like.hidden_units, activation="sigmoid"))
    layers.append(gdcore_or_keras.layers.Dense(units, activation=output))
    return layers


def make_task(name, x, labels, hidden_units, n_classes, learning_rate, batch_size, epochs) -> Task:
    import gdcore

    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    draft = Task(name, x, np.asarray(labels, dtype=np.int64), hidden_units, n_classes, learning_rate, batch_size,
                 epochs, [])
    model = gdcore.Sequential(_layers(draft, gdcore), dtype="float32", seed=0)
    return Task(name, x, draft.labels, hidden_units, n_classes, learning_rate, batch_size, epochs, model.get_weights())


def tasks(large: bool, quick: bool) -> list[Task]:
    from gdcore.datasets import make_classification_dataset, make_three_class_dataset

    seed = make_classification_dataset(n_samples=100, random_state=42)
    three = make_three_class_dataset(n_samples=150, random_state=0)
    result = [make_task("logistic neuron, 100 samples, batch 20, 25 epochs", seed[["X"]], seed["y"], None, 2, 0.1,
                        20, 25),
              make_task("2-8-3 softmax, 150 samples, batch 20, 25 epochs", three[["X1", "X2"]], three["y"], 8, 3, 0.05,
                        20, 25)]
    if large:
        n = 100_000 if quick else 1_000_000
        big = make_classification_dataset(n_samples=n, random_state=1)
        big3 = make_three_class_dataset(n_samples=n, random_state=1)
        result += [make_task(f"logistic neuron, {n:,} samples, batch 32, 1 epoch", big[["X"]], big["y"], None, 2, 0.1,
                             32, 1),
                   make_task(f"2-8-3 softmax, {n:,} samples, batch 32, 1 epoch", big3[["X1", "X2"]], big3["y"], 8, 3,
                             0.05, 32, 1)]
    return result


def accuracy(trainer, task: Task) -> float:
    p = np.asarray(trainer.predict(task.x))
    predicted = (p.reshape(-1) > 0.5).astype(np.int64) if task.n_classes == 2 and p.ndim == 2 and p.shape[1] == 1 \
        else (np.argmax(p, axis=1) if p.ndim == 2 else p.astype(np.int64))
    return float(np.mean(predicted == task.labels))


# --- trainers --------------------------------------------------------------------------------------


class _FitTrainer(peers._KerasShapedTrainer):  # its warm_up and train read the task as a workload
    def predict(self, x):
        return self.model.predict(x, batch_size=65536, verbose=0)


class GdcoreTrainer(_FitTrainer):
    def __init__(self, task: Task, engine: str = "numba", numerics: str = "plain"):
        self.workload, self.engine, self.numerics = task, engine, numerics

    def reset(self):
        import gdcore

        t = self.workload
        self.model = gdcore.Sequential(_layers(t, gdcore), dtype="float32", numerics=self.numerics,
                                       engine=self.engine, seed=0)
        self.model.set_weights(t.initial_weights)
        self.model.compile(optimizer=gdcore.optimizers.Adam(learning_rate=t.learning_rate), loss=t.loss)


class KerasTrainer(_FitTrainer):
    def __init__(self, task: Task):
        keras = peers.import_keras()
        self.workload = task
        self.model = keras.Sequential(_layers(task, keras))
        self.model.compile(optimizer=keras.optimizers.Adam(learning_rate=task.learning_rate), loss=task.loss,
                           jit_compile=False)

    def reset(self):
        self.model.set_weights(self.workload.initial_weights)
        for variable in self.model.optimizer.variables:
            if not variable.path.endswith("learning_rate"):
                variable.assign(np.zeros(variable.shape, dtype=variable.dtype))


class _PartialFit:
    def warm_up(self):
        self.reset()
        x, _ = self.workload.warm_up_slice()
        self.estimator.partial_fit(x, self.workload.labels[:len(x)], classes=np.arange(self.workload.n_classes))

    def train(self):
        classes = np.arange(self.workload.n_classes)
        for _ in range(self.workload.epochs):
            self.estimator.partial_fit(self.workload.x, self.workload.labels, classes=classes)

    def predict(self, x):
        return self.estimator.predict(x)


class MLPClassifierTrainer(_PartialFit):
    def __init__(self, task: Task):
        self.workload = task

    def reset(self):
        from sklearn.neural_network import MLPClassifier

        t = self.workload
        hidden = dict(hidden_layer_sizes=(1,), activation="identity") if t.hidden_units is None else \
            dict(hidden_layer_sizes=(t.hidden_units,), activation="logistic")
        self.estimator = MLPClassifier(solver="adam", batch_size=t.batch_size, learning_rate_init=t.learning_rate,
                                       alpha=0.0, shuffle=True, random_state=np.random.RandomState(0), **hidden)


class SGDClassifierTrainer(_PartialFit):
    def __init__(self, task: Task):
        if task.hidden_units is not None or task.n_classes != 2:
            raise ValueError("SGDClassifier is the logistic neuron only")
        self.workload = task

    def reset(self):
        from sklearn.linear_model import SGDClassifier

        self.estimator = SGDClassifier(loss="log_loss", penalty=None, learning_rate="constant",
                                       eta0=self.workload.learning_rate, shuffle=True,
                                       random_state=np.random.RandomState(0))


class JaxTrainer:
    """JAX: the same network and Adam, one jit-compiled ``lax.scan`` over the epoch's batches, shuffled per epoch."""

    def __init__(self, task: Task):
        import jax
        import jax.numpy as jnp

        self.workload, self.jax, self.jnp = task, jax, jnp
        t = task
        n_batches = -(-len(t.x) // t.batch_size)
        pad = n_batches * t.batch_size - len(t.x)
        binary = t.n_classes == 2

        def forward(params, x):
            h = x
            for kernel, bias in params[:-1]:
                h = jax.nn.sigmoid(h @ kernel + bias)
            return h @ params[-1][0] + params[-1][1]

        def loss(params, x, y, mask):
            logits = forward(params, x)
            if binary:
                per = jnp.maximum(logits, 0) - logits * y + jnp.log1p(jnp.exp(-jnp.abs(logits)))
                per = per[:, 0]
            else:
                per = -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1)[:, 0]
            return jnp.sum(per * mask) / jnp.sum(mask)

        grad = jax.grad(loss)
        lr, b1, b2, eps = t.learning_rate, 0.9, 0.999, 1e-7

        def step(state, batch):
            params, m, v, count = state
            x, y, mask = batch
            g = grad(params, x, y, mask)
            count = count + 1
            m = jax.tree_util.tree_map(lambda m, g: m + (g - m) * (1 - b1), m, g)
            v = jax.tree_util.tree_map(lambda v, g: v + (g * g - v) * (1 - b2), v, g)
            alpha = lr * jnp.sqrt(1 - b2 ** count) / (1 - b1 ** count)
            params = jax.tree_util.tree_map(lambda p, m, v: p - m * alpha / (jnp.sqrt(v) + eps), params, m, v)
            return (params, m, v, count), None

        @jax.jit
        def epoch(state, x, y, order):
            order = jnp.concatenate([order, jnp.zeros(pad, order.dtype)])
            mask = jnp.concatenate([jnp.ones(len(t.x), jnp.float32), jnp.zeros(pad, jnp.float32)])
            xs = x[order].reshape(n_batches, t.batch_size, -1)
            ys = y[order].reshape(n_batches, t.batch_size, *y.shape[1:])
            state, _ = jax.lax.scan(step, state, (xs, ys, mask.reshape(n_batches, t.batch_size)))
            return state

        self._epoch, self._forward = epoch, jax.jit(forward)
        self._x = jnp.asarray(t.x)
        self._y = jnp.asarray(t.labels.astype(np.float32).reshape(-1, 1) if binary else t.labels.astype(np.int32))

    def reset(self):
        jnp = self.jnp
        weights = [jnp.asarray(w) for w in self.workload.initial_weights]
        params = [(weights[i], weights[i + 1]) for i in range(0, len(weights), 2)]
        zeros = self.jax.tree_util.tree_map(jnp.zeros_like, params)
        self._state = (params, zeros, zeros, jnp.float32(0))
        self._rng = np.random.default_rng(0)

    def warm_up(self):
        self.reset()
        self.train()

    def train(self):
        state = self._state
        for _ in range(self.workload.epochs):
            state = self._epoch(state, self._x, self._y, self.jnp.asarray(self._rng.permutation(len(self.workload.x))))
        self.jax.block_until_ready(state)
        self._state = state

    def predict(self, x):
        logits = np.asarray(self._forward(self._state[0], self.jnp.asarray(x)))
        return 1 / (1 + np.exp(-logits)) if self.workload.n_classes == 2 else logits


def implementations(with_jax: bool, with_keras_large: bool) -> list[Implementation]:
    large = lambda task: len(task.x) > 10_000  # noqa: E731
    rows = [Implementation(REFERENCE, GdcoreTrainer),
            Implementation("gdcore, Numba engine, `numerics=\"tensorflow\"`",
                           lambda t: GdcoreTrainer(t, numerics="tensorflow")),
            Implementation("gdcore, NumPy engine", lambda t: GdcoreTrainer(t, engine="numpy"),
                           applies=lambda t: not large(t))]
    if with_jax:
        rows.append(Implementation("JAX, jit + `lax.scan`", JaxTrainer))
    rows += [Implementation("scikit-learn `MLPClassifier.partial_fit`", MLPClassifierTrainer),
             Implementation("scikit-learn `SGDClassifier.partial_fit` (batch 1)", SGDClassifierTrainer,
                            applies=lambda t: t.hidden_units is None),
             Implementation(KERAS, KerasTrainer,
                            applies=lambda t: with_keras_large or not large(t))]
    return rows


def regression_control(keras_ratios: dict, budget: float, log) -> list[str]:
    """The seed's two regressions (gdcore and Keras) timed in this run, and each classifier's lead over Keras next to theirs."""
    import gdcore
    from bench_training import run_section

    seed = gdcore.datasets.make_regression_dataset(100, noise=1.25, random_state=42)
    workloads = [peers.make_workload("linear neuron, SGD 0.01", seed["X"], seed["y"], None, "sgd", 0.01, 20, 25),
                 peers.make_workload("1-8-1 sigmoid, Adam 0.1", seed["X"], seed["y"], 8, "adam", 0.1, 20, 25)]
    rows = [Implementation(REFERENCE, peers.GdcoreTrainer), Implementation(KERAS, peers.KerasTrainer)]
    log("== control: the seed regressions")
    results = run_section(workloads, rows, budget, log)
    lines = ["## Control: the seed's regressions in the same run (100 samples, batch 20, 25 epochs)", "",
             "| workload | gdcore | Keras `fit` | Keras / gdcore |", "|---|---:|---:|---:|"]
    leads = {}
    for workload in workloads:
        mine, keras = results[workload.name].get(REFERENCE), results[workload.name].get(KERAS)
        if mine is None or keras is None or not mine.median or not keras.median:
            continue
        leads[workload.name] = keras.median / mine.median
        lines.append(f"| {workload.name} | {_cell(mine, mine)[0]} | {_cell(keras, mine)[0]} | "
                     f"{leads[workload.name]:,.0f}× |")
    lines.append("")
    if leads and keras_ratios:
        lines += ["Each classifier's lead over Keras against the regressions' (same run): " +
                  "; ".join(f"{name.split(',')[0]} {ratio:,.0f}×" for name, ratio in keras_ratios.items()) +
                  " vs " + "; ".join(f"{name.split(',')[0]} {ratio:,.0f}×" for name, ratio in leads.items()) + ".", ""]
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Time gdcore's classification training against its peers.")
    parser.add_argument("--quick", action="store_true", help="100,000 samples for the large rows, a smaller budget")
    parser.add_argument("--with-keras-large", action="store_true", help="time Keras on the large rows too")
    parser.add_argument("--no-large", action="store_true", help="only the seed-sized rows")
    parser.add_argument("--no-regression", action="store_true",
                        help="leave out the control rows: the seed's two regressions, gdcore and Keras, in this run")
    parser.add_argument("--output", type=Path, help="also write the Markdown report to this file")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    rows = implementations(peers.jax_available(), args.with_keras_large)
    lines = ["# gdcore classification benchmark", "",
             *(line.replace("bench_training.py", "bench_classification.py") for line in machine_lines()), ""]
    started = time.perf_counter()
    keras_ratios = {}
    for task in tasks(large=not args.no_large, quick=args.quick):
        log(task.name)
        trainers = {}
        errors = {}
        for row in rows:
            if row.applies(task):
                try:
                    trainers[row.label] = row.build(task)
                except Exception as error:  # an optional peer missing
                    errors[row.label] = str(error)[:120]
        results = measure(trainers, 2.0 if args.quick else 6.0, {}, log, quality=accuracy)
        reference = results.get(REFERENCE)
        lines += [f"## {task.name}", "", "| implementation | median | × gdcore | accuracy |", "|---|---:|---:|---:|"]
        for label in [row.label for row in rows if row.applies(task)]:
            if label in errors:
                lines.append(f"| {label} | n/a: {errors[label]} | | |")
                continue
            median, ratio, quality = _cell(results[label], reference)
            lines.append(f"| {label} | {median} | {ratio} | {quality} |")
        lines.append("")
        keras = results.get(KERAS)
        if keras is not None and keras.median and reference is not None and reference.median:
            keras_ratios[task.name] = keras.median / reference.median
    if not args.no_regression:
        lines += regression_control(keras_ratios, 2.0 if args.quick else 6.0, log)
    lines.append(f"Total wall time {time.perf_counter() - started:.0f} s.")
    report = "\n".join(lines)
    print(report)
    if args.output:
        args.output.write_text(report + "\n")


if __name__ == "__main__":
    main()
