"""``keras.metrics``: not implemented yet in gdcore; every name is an error that says so (never a silent no-op)."""


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise NotImplementedError(f"keras.metrics.{name} is not supported yet by gdcore: compile(metrics=...) is refused; "
                              "the loss is always tracked")
