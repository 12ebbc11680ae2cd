"""Render the README's figures: ``python docs/make_figures.py`` (writes docs/*.png)."""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import gdcore  # noqa: E402
from gdcore import plot  # noqa: E402
from gdcore.trace import fit_trace  # noqa: E402

HERE = Path(__file__).parent


def linear_neuron(optimizer):
    model = gdcore.Sequential([gdcore.Input(shape=(1,)), gdcore.layers.Dense(1)], seed=0)
    model.set_weights([np.array([[-0.25]]), np.array([0.0])])
    model.compile(optimizer=optimizer, loss="mse")
    return model


def main(argv=None):
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    train = gdcore.datasets.make_regression_dataset(n_samples=100, noise=1.25, random_state=42)
    x, y = train[["X"]], train["y"]
    paths = {
        "SGD, learning rate 0.01": fit_trace(linear_neuron(gdcore.optimizers.SGD(learning_rate=0.01)), x, y,
                                             epochs=10, batch_size=20, per_step=True),
        "Adam, learning rate 0.1": fit_trace(linear_neuron(gdcore.optimizers.Adam(learning_rate=0.1)), x, y,
                                             epochs=10, batch_size=20, per_step=True),
    }
    fig, ax = plt.subplots(figsize=(7, 5), layout="constrained")
    plot.plot_loss_surface(train["X"], train["y"], paths, ax=ax,
                           title="MSE of the linear neuron over (w, b), one dot per batch")
    fig.savefig(HERE / "loss-surface.png", dpi=110)

    network = gdcore.Sequential([
        gdcore.Input(shape=(1,)),
        gdcore.layers.Dense(8, activation="sigmoid", kernel_initializer=gdcore.initializers.RandomNormal(0, 0.25, seed=123)),
        gdcore.layers.Dense(1),
    ], seed=0)
    network.compile(optimizer=gdcore.optimizers.Adam(learning_rate=0.1), loss="mse")
    trace = fit_trace(network, x, y, epochs=25, batch_size=20)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    final = trace.predictions[trace.predictions["epoch"] == 25].sort_values("X")
    plot.plot_fit(train["X"], train["y"], ax=left, title="Data and the trained network")
    left.plot(final["X"], final["y_pred"], color="#ff6700", lw=2, label="8 sigmoid units, epoch 25")
    left.legend()
    plot.plot_losses(trace, ax=right, title="Loss per epoch")
    fig.savefig(HERE / "sigmoid-network.png", dpi=110)


if __name__ == "__main__":
    main()
