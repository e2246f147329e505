"""Severity and confidence of a deviation (the seed's defaults: >= 2 medium, >= 3 high, >= 4 critical)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf


@dataclass(frozen=True, slots=True)
class SeverityScale:
    """Deviation thresholds for medium, high and critical; below medium is low.

    >>> SeverityScale().grade(np.array([1.0, 2.5, 3.0, 7.0])).tolist()
    [0, 1, 2, 3]
    """

    medium: float = 2.0
    high: float = 3.0
    critical: float = 4.0

    def grade(self, deviation: np.ndarray) -> np.ndarray:
        d = np.abs(deviation)
        return (
            (d >= self.medium).astype(np.int8) + (d >= self.high) + (d >= self.critical)
        ).astype(np.int8)


def confidence(deviation: np.ndarray) -> np.ndarray:
    """Two-sided Gaussian confidence that a deviation (in standard units) is not chance, in [0, 1].

    >>> [round(float(c), 3) for c in confidence(np.array([0.0, 1.96, 4.0]))]
    [0.0, 0.95, 1.0]
    """
    return np.asarray(erf(np.abs(deviation) / np.sqrt(2.0)), np.float64)
