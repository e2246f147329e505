"""Market simulator kernel: one block of steps for every symbol, all randomness passed in.

Per symbol and step: log-volatility follows a mean-reverting process with a GARCH-like kick
from the previous shock (volatility clustering); shocks are multivariate Student-t (fat tails,
tail dependence) correlated with the first symbol (BTC); Poisson jumps; event modifiers (jump,
drift, volatility and volume multipliers) are added by the caller; volume is log-normal with an
intraday seasonality and rises with the size of the move.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

NS_PER_S = 1_000_000_000
_SECONDS_PER_DAY = 86_400.0
_MEAN_ABS_Z = 0.7978845608  # E|z| for a standard normal


@njit(cache=True, nogil=True)
def simulate_block(
    log_p,
    h,
    last_absz,
    sig_step,
    rho,
    phi,
    eta,
    kappa,
    jump_p,
    jump_scale,
    notional,
    z,
    mixscale,
    xi,
    ju,
    jsize,
    vn,
    su,
    jit,
    ev_jump,
    ev_drift,
    ev_sigma,
    ev_volume,
    t0_ns,
    dt_ns,
    step0,
    out_symbol,
    out_ts,
    out_price,
    out_volume,
    out_side,
):
    """Advance ``z.shape[0]`` steps for every symbol in place; write ticks step-major."""
    n_steps, n_sym = z.shape
    k = 0
    for i in range(n_steps):
        t_step = t0_ns + (step0 + i) * dt_ns
        hour = ((t_step // NS_PER_S) % 86400) / 3600.0
        season = 1.0 + 0.6 * math.cos(2.0 * math.pi * (hour - 15.0) / 24.0)
        common = z[i, 0]
        for s in range(n_sym):
            h[s] = phi * h[s] + eta * xi[i, s] + kappa * (last_absz[s] - _MEAN_ABS_Z)
            r_own = z[i, s] if s == 0 else rho[s] * common + math.sqrt(1.0 - rho[s] ** 2) * z[i, s]
            shock = r_own * mixscale[i]
            sigma = sig_step[s] * math.exp(h[s]) * ev_sigma[i, s]
            ret = sigma * shock + ev_drift[i, s] + ev_jump[i, s]
            if ju[i, s] < jump_p[s]:
                ret += jsize[i, s] * jump_scale
            last_absz[s] = abs(shock)
            log_p[s] += ret
            price = math.exp(log_p[s])
            move = abs(ret) / sig_step[s]
            vol = notional[s] / price * math.exp(0.8 * vn[i, s] - 0.32)
            vol *= season * (0.6 + 0.4 * min(move, 10.0)) * ev_volume[i, s]
            out_symbol[k] = s
            out_ts[k] = t_step + np.int64((s + 0.5 * jit[i, s]) * dt_ns / n_sym)
            out_price[k] = price
            out_volume[k] = vol
            up = ret > 0.0
            out_side[k] = 1 if (su[i, s] < 0.7) == up else -1
            k += 1


def per_step_sigma(daily_vol: np.ndarray, dt_s: float) -> np.ndarray:
    return daily_vol * math.sqrt(dt_s / _SECONDS_PER_DAY)
