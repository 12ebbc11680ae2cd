"""``keras.backend``'s session functions: ``clear_session``, ``floatx``, ``set_floatx``, ``epsilon``."""

from gdcore import _naming
from gdcore.config import epsilon, floatx, set_floatx

__all__ = ["clear_session", "epsilon", "floatx", "set_floatx"]


def clear_session(free_memory: bool = True) -> None:
    """Start a fresh session, as Keras's: layer and model names count from the start again, the global seed is forgotten."""
    from gdcore import config
    from gdcore import random as streams

    _naming.reset()
    config._set_seed(None)
    streams.clear_session()
