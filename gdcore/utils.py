"""``keras.utils`` for gdcore: ``set_random_seed``, ``plot_model``, ``to_categorical``, ``Progbar``."""

import numpy as np

from gdcore.callbacks import Progbar

__all__ = ["Progbar", "plot_model", "set_random_seed", "to_categorical"]


def set_random_seed(seed: int) -> None:
    """``keras.utils.set_random_seed``: seed every random stream, Keras's and gdcore's.

    As Keras: Python's ``random`` (which seeds each unseeded initializer as its
    layer is created), NumPy's global generator and TensorFlow's global seed
    (which decides ``fit``'s shuffle): a gdcore translation of a seeded Keras
    cell then draws Keras's numbers (:mod:`gdcore.random`). Models with
    ``random="gdcore"`` and no ``seed=`` draw from a sequence started at ``seed``.
    """
    from gdcore import config
    from gdcore import random as streams

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    streams.set_random_seed(int(seed))  # Python's random, NumPy's, TensorFlow's global seed (Keras's streams)
    config._set_seed(int(seed))  # gdcore's own stream


def plot_model(model, to_file="model.png", **kwargs):
    """Draw the model with pydot, as ``keras.utils.plot_model``; without pydot, say so, as Keras does."""
    try:
        import pydot
    except ImportError:
        print("You must install pydot (`pip install pydot`) for `plot_model` to work.")
        return None
    graph = pydot.Dot(graph_type="digraph", rankdir=kwargs.get("rankdir", "TB"))
    previous = None
    for layer in model.layers:
        node = pydot.Node(layer.name, label=f"{layer.name} ({type(layer).__name__})", shape="record")
        graph.add_node(node)
        if previous is not None:
            graph.add_edge(pydot.Edge(previous, node))
        previous = node
    graph.write(to_file, format=str(to_file).rsplit(".", 1)[-1])
    return graph


def to_categorical(x, num_classes=None) -> np.ndarray:
    """One-hot rows of class indices ``x`` (``keras.utils.to_categorical``), float32."""
    x = np.asarray(x)
    if x.dtype.kind not in "iu" and not (x.dtype.kind == "f" and np.all(x == np.round(x))):
        raise ValueError("to_categorical needs integer class indices")
    x = x.astype(np.int64).reshape(-1)
    if x.size and x.min() < 0:
        raise ValueError(f"class indices must be >= 0, got {x.min()}")
    num_classes = int(x.max()) + 1 if num_classes is None else int(num_classes)
    if x.size and x.max() >= num_classes:
        raise ValueError(f"class index {x.max()} is out of range for num_classes={num_classes}")
    out = np.zeros((x.size, num_classes), np.float32)
    out[np.arange(x.size), x] = 1
    return out
