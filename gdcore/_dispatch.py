"""Branch chains generated from a table, for the compiled engine.

Numba compiles an ``if kind == 0: ... elif kind == 1: ...`` chain to plain
branches, each one inlinable; a tuple of functions indexed at run time would be
an indirect call. :func:`switch` writes that chain for any table, so that a new
table entry reaches the compiled loop with no edit to it, and an id with no
entry raises instead of falling through to some other entry.
"""

from typing import Callable, Sequence


def switch(name: str, functions: Sequence[Callable], params: Sequence[str], kind: str,
           leading: Sequence[str] = (), extra: Sequence[str] = (), takes_extra: Sequence[bool] = ()) -> Callable:
    """A function ``name(*leading, kind, *params, *extra)`` calling ``functions[kind](*params)``; another ``kind`` raises.

    ``extra`` arguments are passed on, after ``params``, to the functions whose
    ``takes_extra`` entry is true (an activation's parameter, say), and to no other.

    The function is meant to be compiled by Numba, as the implementation an
    ``@overload`` returns (``leading`` are arguments of the overloaded
    signature that the chain does not pass on); its code claims this file as
    its source, so that Numba can cache what it compiles from it.
    """
    lines = [f"def {name}({', '.join([*leading, kind, *params, *extra])}):"]
    for index in range(len(functions)):
        passed = [*params, *extra] if index < len(takes_extra) and takes_extra[index] else params
        lines.append(f"    {'if' if index == 0 else 'elif'} {kind} == {index}:")
        lines.append(f"        return _function_{index}({', '.join(passed)})")
    lines.append("    else:")
    lines.append(f"        raise ValueError('no {kind} has this id')")
    # A module name lets Numba rebuild the function's environment when it loads it from its cache.
    namespace = {"__name__": __name__, **{f"_function_{index}": function for index, function in enumerate(functions)}}
    exec(compile("\n".join(lines), __file__, "exec"), namespace)  # noqa: S102 (our own generated source)
    return namespace[name]
