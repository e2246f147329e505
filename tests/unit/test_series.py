"""The ensemble score of one plain series (``rxpipe score``): robust z-scores."""

import numpy as np

from rxpipe.operators.series import SeriesConfig, _abs_z, score_series


def spikes() -> np.ndarray:
    x = np.random.default_rng(3).normal(0.0, 1.0, 1000)
    x[500] += 30.0
    x[560] += 36.0  # larger than the first, which is still in the window
    return x


def test_a_spike_still_in_the_window_does_not_hide_the_next() -> None:
    x = spikes()
    robust, classic = _abs_z(x, SeriesConfig()), _abs_z(x, SeriesConfig(robust=False))
    assert robust[560] > robust[500] > 25  # median and IQR barely move for one outlier
    assert classic[560] < 0.5 * classic[500]  # the first spike inflated the std
    assert score_series(x)[560] > 3 * score_series(x, config=SeriesConfig(robust=False))[560]


def test_robust_z_of_a_flat_window() -> None:
    x = np.r_[np.zeros(200), 1.0, np.zeros(10)]
    z = _abs_z(x, SeriesConfig())
    assert np.isnan(z[:29]).all() and z[100] == 0.0
    assert z[200] == SeriesConfig().flat_deviation  # any change after a flat window
