"""``shift``: move a run of values inside one array, as C's ``memmove`` does.

Numba compiles an element-by-element loop for ``a[j] = a[j + 1]`` (the source and the target
overlap, so it cannot use vector moves), and a slice assignment ``a[k:t] = a[k + 1:t + 1]``
copies through a temporary array. This intrinsic emits LLVM's ``memmove`` instead: about 30 ns
less per tick for a sorted window of 100 values (``rxpipe.kernels.quantiles``). It stays
cacheable, unlike a call into libc through ctypes.
"""

from __future__ import annotations

from typing import Any

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def shift(typingctx: Any, arr: Any, dst: Any, src: Any, count: Any) -> Any:
    """``arr[dst:dst + count] = arr[src:src + count]`` for a C-contiguous 1-D ``arr``; the ranges
    may overlap. No bounds are checked: the caller keeps them inside the array."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"):
        return None
    sig = types.void(arr, types.intp, types.intp, types.intp)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        a, d, s, n = args
        ary = context.make_array(signature.args[0])(context, builder, a)
        to, frm = builder.gep(ary.data, [d]), builder.gep(ary.data, [s])
        cgutils.raw_memmove(builder, to, frm, n, ary.itemsize)
        return context.get_dummy_value()

    return sig, codegen
