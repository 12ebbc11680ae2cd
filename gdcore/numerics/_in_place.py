"""Compiled loops that apply an elementwise function to a whole (batch, units) buffer, in place.

Every profile evaluates its activations and their gradients through these two
factories. A loop runs over the flattened array in C order: one long loop
vectorises where a short inner loop over the units would not. In place, with
one array, the compiler needs no check that input and output do not overlap (a
loop from one array into the same array fails that check and runs
unvectorised).

TensorFlow's Eigen kernels evaluate whole SIMD packets with one formula and the
last ``size % P`` elements of the flattened tensor with another
(:mod:`gdcore.numerics.eigen`); ``tail`` names that second formula. Without
it, every element uses ``function``.
"""

from numba import njit


def _compile(loop, name: str, inline: bool):
    loop.__name__ = loop.__qualname__ = name  # distinct names keep the on-disk cache entries apart
    return njit(cache=True, error_model="numpy", nogil=True, inline="always" if inline else "never")(loop)


def activation_loop(function, name: str, tail=None, inline: bool = False, parametric: int = 0):
    """A compiled ``loop(z)``: z <- function(z), elementwise (``tail`` on the last size % P elements).

    ``parametric`` (1 or 3): ``loop(z, p0, p1, p2)``, z <- function(z, p0) or function(z, p0, p1, p2) (an entry
    with parameters, ``Activation.parameters``).
    """
    tail = function if tail is None else tail
    if parametric == 1:
        def loop(z, p0, p1, p2):
            flat, end = z.flat, z.size - z.size % (32 // z.itemsize)
            for i in range(end):
                flat[i] = function(flat[i], p0)
            for i in range(end, z.size):
                flat[i] = tail(flat[i], p0)

        return _compile(loop, name, inline)
    if parametric == 3:
        def loop(z, p0, p1, p2):
            flat, end = z.flat, z.size - z.size % (32 // z.itemsize)
            for i in range(end):
                flat[i] = function(flat[i], p0, p1, p2)
            for i in range(end, z.size):
                flat[i] = tail(flat[i], p0, p1, p2)

        return _compile(loop, name, inline)

    def loop(z):
        flat, end = z.flat, z.size - z.size % (32 // z.itemsize)  # 256-bit packets: 8 float32 or 4 float64
        for i in range(end):
            flat[i] = function(flat[i])
        for i in range(end, z.size):
            flat[i] = tail(flat[i])

    return _compile(loop, name, inline)


def gradient_loop(function, name: str, tail=None, inline: bool = False, parametric: int = 0):
    """A compiled ``loop(y, delta)``: delta <- function(y, delta), elementwise (``tail`` as above; ``parametric``:
    ``loop(y, delta, p0, p1, p2)``, as :func:`activation_loop`)."""
    tail = function if tail is None else tail
    if parametric == 1:
        def loop(y, delta, p0, p1, p2):
            flat_y, flat_delta, end = y.flat, delta.flat, y.size - y.size % (32 // y.itemsize)
            for i in range(end):
                flat_delta[i] = function(flat_y[i], flat_delta[i], p0)
            for i in range(end, y.size):
                flat_delta[i] = tail(flat_y[i], flat_delta[i], p0)

        return _compile(loop, name, inline)
    if parametric == 3:
        def loop(y, delta, p0, p1, p2):
            flat_y, flat_delta, end = y.flat, delta.flat, y.size - y.size % (32 // y.itemsize)
            for i in range(end):
                flat_delta[i] = function(flat_y[i], flat_delta[i], p0, p1, p2)
            for i in range(end, y.size):
                flat_delta[i] = tail(flat_y[i], flat_delta[i], p0, p1, p2)

        return _compile(loop, name, inline)

    def loop(y, delta):
        flat_y, flat_delta, end = y.flat, delta.flat, y.size - y.size % (32 // y.itemsize)
        for i in range(end):
            flat_delta[i] = function(flat_y[i], flat_delta[i])
        for i in range(end, y.size):
            flat_delta[i] = tail(flat_y[i], flat_delta[i])

    return _compile(loop, name, inline)
