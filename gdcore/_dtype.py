"""``cast(value, like)``: a constant in the floating dtype of ``like``, in NumPy and in Numba.

Every constant in a kernel goes through it. In NumPy, ``float32_array * 2.0``
stays float32; in Numba, a Python float literal is float64 and would silently
promote a float32 computation. One spelling keeps both paths in the model's
dtype.
"""

import numpy as np
from numba import types
from numba.extending import overload


def cast(value, like):
    """``value`` as a scalar of ``like``'s floating dtype (``like``: array or scalar)."""
    return np.result_type(like).type(value)


@overload(cast, jit_options={"cache": True})
def _cast_numba(value, like):
    dtype = like.dtype if isinstance(like, types.Array) else like
    if dtype == types.float32:
        return lambda value, like: np.float32(value)
    return lambda value, like: np.float64(value)
