"""Per-symbol state arrays that grow as new symbols appear and can be snapshotted."""

from __future__ import annotations

from typing import Any

import numpy as np


class SymbolState:
    """A set of numpy arrays whose first axis is the symbol id.

    >>> st = SymbolState(mean=(0.0, ()), ring=(np.nan, (3,)))
    >>> st.ensure(2); st["ring"].shape  # grows in steps, at least 8 symbols
    (8, 3)
    >>> st.ensure(12); st["mean"].shape, bool(np.isnan(st["ring"][11, 0]))
    ((16,), True)
    """

    def __init__(
        self, **spec: tuple[Any, tuple[int, ...]] | tuple[Any, tuple[int, ...], Any]
    ) -> None:
        self._spec: dict[str, tuple[Any, tuple[int, ...], Any]] = {}
        for name, s in spec.items():
            fill, shape = s[0], s[1]
            dtype = s[2] if len(s) > 2 else np.asarray(fill).dtype
            self._spec[name] = (fill, shape, dtype)
        self.arrays: dict[str, np.ndarray] = {
            name: np.full((0, *shape), fill, dtype)
            for name, (fill, shape, dtype) in self._spec.items()
        }
        self.n_symbols = 0

    def ensure(self, n: int) -> None:
        if n <= self.n_symbols:
            return
        n = max(n, 2 * self.n_symbols, 8)
        for name, (fill, shape, dtype) in self._spec.items():
            grown = np.full((n, *shape), fill, dtype)
            grown[: self.n_symbols] = self.arrays[name]
            self.arrays[name] = grown
        self.n_symbols = n

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def snapshot(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.arrays.items()}

    def restore(self, snap: dict[str, np.ndarray]) -> None:
        for k, v in snap.items():
            self.arrays[k] = v.copy()
        self.n_symbols = len(next(iter(snap.values()))) if snap else 0
