"""Keras's automatic names: a class's snake-case name made unique within the session (``dense``, ``dense_1``, ...)."""

from collections import Counter

_counts: Counter = Counter()


def unique_name(prefix: str) -> str:
    """``prefix`` the first time in this session, then ``prefix_1``, ``prefix_2``, ... (Keras's ``uniquify``)."""
    _counts[prefix] += 1
    return prefix if _counts[prefix] == 1 else f"{prefix}_{_counts[prefix] - 1}"


def reset() -> None:
    """Forget every name handed out (``gdcore.backend.clear_session``)."""
    _counts.clear()
