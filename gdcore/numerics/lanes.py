"""How TensorFlow evaluates a transcendental op at an element of a tensor: the element's lane.

TensorFlow's Exp, Log, Log1p and (float32) Reciprocal kernels run Eigen's packet
formulas on whole SIMD packets from the start of the flattened tensor and its
scalar path (the C library) on the last n % P elements, P = 8 float32 or 4
float64 (:mod:`gdcore.numerics.eigen`). A loss or metric evaluates each element
in a lane: PLAIN (the C library, the "plain" profile), PACKET or TAIL (the
"tensorflow" profile). The functions here work on NumPy arrays and in compiled
code alike.
"""

import numpy as np

from gdcore._dtype import cast, jitable, libm_exp, libm_log, libm_log1p
from gdcore.numerics import eigen

PLAIN, PACKET, TAIL = 0, 1, 2
_eigen_exp, _eigen_exp_tail = jitable(eigen.exp), jitable(eigen.exp_scalar)
_eigen_log, _eigen_log1p = jitable(eigen.log), jitable(eigen.log1p)
_eigen_log1p_tail, _eigen_reciprocal = jitable(eigen.log1p_scalar), jitable(eigen.reciprocal)


@jitable
def exp_at(x, lane):
    if lane == PACKET:
        return _eigen_exp(x)
    return _eigen_exp_tail(x) if lane == TAIL else libm_exp(x)


@jitable
def log_at(x, lane):
    return _eigen_log(x) if lane == PACKET else libm_log(x)  # Eigen's scalar log is the C library's


@jitable
def log1p_at(x, lane):
    if lane == PACKET:
        return _eigen_log1p(x)
    return _eigen_log1p_tail(x) if lane == TAIL else libm_log1p(x)


@jitable
def reciprocal_at(x, lane):
    return _eigen_reciprocal(x) if lane == PACKET else cast(1, x) / x


@jitable
def lane_of(index, end, packet):
    """The lane of element ``index`` (C order) of a tensor whose whole packets end at ``end`` (``packet`` 0: plain)."""
    if packet == 0:
        return PLAIN
    return PACKET if index < end else TAIL


def elementwise(function, packet: int, *arrays):
    """``function(*arrays, lane)``: PACKET on the first ``n - n % P`` elements of ``arrays[1]``'s shape (C order), TAIL after.

    ``packet`` is P (0: the plain profile, every element PLAIN); the arrays broadcast to ``arrays[1]``'s shape.
    """
    if not packet:
        return function(*arrays, PLAIN)
    shape = arrays[1].shape
    flat = [np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1) for a in arrays]
    end = flat[1].size - flat[1].size % packet
    out = np.empty_like(flat[1])
    out[:end] = function(*(f[:end] for f in flat), PACKET)
    out[end:] = function(*(f[end:] for f in flat), TAIL)
    return out.reshape(shape)
