"""A realistic, deterministic market simulator with labelled events.

The simulation advances in fixed blocks of steps drawn from one seeded generator, so the ticks
and the events depend on the seed only, never on how fast or in what pieces they are consumed.
In real time the ticks carry wall-clock timestamps; in backfill they cover a past period.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import reactivex as rx
from reactivex.abc import ObserverBase, SchedulerBase
from reactivex.disposable import Disposable

from rxpipe.kernels.simulator import NS_PER_S, per_step_sigma, simulate_block
from rxpipe.model import SymbolTable, TickBatch

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AssetProfile:
    price: float
    daily_vol: float
    beta_rho: float
    notional: float  # mean traded value of one tick, in quote currency


SEED_ASSETS: dict[str, AssetProfile] = {
    "BTCUSDT": AssetProfile(45_000.0, 0.030, 1.00, 9_000.0),
    "ETHUSDT": AssetProfile(3_200.0, 0.040, 0.85, 6_000.0),
    "ADAUSDT": AssetProfile(0.45, 0.055, 0.70, 1_200.0),
    "SOLUSDT": AssetProfile(95.0, 0.060, 0.72, 2_500.0),
    "DOTUSDT": AssetProfile(7.2, 0.055, 0.70, 900.0),
    "LINKUSDT": AssetProfile(15.5, 0.055, 0.70, 1_000.0),
    "UNIUSDT": AssetProfile(8.8, 0.060, 0.65, 700.0),
    "AVAXUSDT": AssetProfile(25.0, 0.060, 0.70, 1_100.0),
    "MATICUSDT": AssetProfile(0.85, 0.060, 0.70, 900.0),
    "ATOMUSDT": AssetProfile(9.5, 0.055, 0.65, 700.0),
}
DEFAULT_SYMBOLS = list(SEED_ASSETS)
_OTHER = AssetProfile(100.0, 0.05, 0.6, 1_000.0)

EVENT_KINDS = ("price_spike", "crash", "volume_burst", "volatility_regime")


@dataclass(frozen=True, slots=True)
class SimEvent:
    """A labelled event injected by the simulator (timestamps in ns, UTC)."""

    symbol: str
    kind: str
    start_ts: int
    end_ts: int
    magnitude: float  # log-return for price events, multiplier for volume and volatility


@dataclass(frozen=True, slots=True)
class _Scheduled:
    sym: int
    kind: str
    start: int  # step
    end: int  # step, exclusive
    magnitude: float


class Simulator:
    """Ticks for a set of symbols; ``steps(n)`` advances every symbol by ``n`` steps.

    Parameters
    ----------
    symbols: names; unknown ones get a generic profile.
    seed: the only source of randomness.
    step_s: seconds between two ticks of one symbol.
    start_ns: timestamp of step 0 (default: now).
    event_rate_per_hour: labelled events per symbol per hour of simulated time.

    >>> sim = Simulator(["BTCUSDT", "ETHUSDT"], seed=7, step_s=1.0, start_ns=0)
    >>> b = sim.steps(3)
    >>> len(b), [sim.symbols.name(i) for i in b.symbol[:2]]
    (6, ['BTCUSDT', 'ETHUSDT'])
    >>> bool(np.all(np.diff(b.ts) > 0))
    True
    """

    BLOCK = 512

    def __init__(
        self,
        symbols: list[str] | None = None,
        *,
        seed: int = 42,
        step_s: float = 0.01,
        start_ns: int | None = None,
        event_rate_per_hour: float = 0.1,
        symbol_table: SymbolTable | None = None,
        source_id: int = 0,
        seq_start: int = 0,
    ) -> None:
        names = list(symbols or DEFAULT_SYMBOLS)
        if "BTCUSDT" in names:  # the market factor is the first symbol
            names.remove("BTCUSDT")
            names.insert(0, "BTCUSDT")
        self.names = names
        self.symbols = symbol_table if symbol_table is not None else SymbolTable()
        self._ids = np.array([self.symbols.intern(n) for n in names], np.int32)
        self.source_id = source_id
        self.seq = seq_start
        self.step_s = step_s
        self.dt_ns = max(1, round(step_s * NS_PER_S))
        self.start_ns = time.time_ns() if start_ns is None else start_ns
        self.event_rate_per_hour = event_rate_per_hour
        profiles = [SEED_ASSETS.get(n, _OTHER) for n in names]
        self._sig = per_step_sigma(np.array([p.daily_vol for p in profiles]), step_s)
        self._rho = np.array([p.beta_rho for p in profiles])
        self._notional = np.array([p.notional for p in profiles])
        self._jump_p = np.full(len(names), 4.0 * step_s / 86_400.0)  # ~4 jumps a day
        tau_steps = 1_800.0 / step_s  # volatility shocks decay over ~30 minutes
        self._phi = math.exp(-1.0 / tau_steps)
        self._eta = 0.35 * math.sqrt(1.0 - self._phi**2)
        self._kappa = 0.25 * math.sqrt(1.0 - self._phi**2)
        self._log_p = np.log([p.price for p in profiles])
        self._h = np.zeros(len(names))
        self._last_absz = np.full(len(names), 0.8)
        self._rng = np.random.default_rng(seed)
        self._event_rng = np.random.default_rng([seed, 1])
        self._pending: list[_Scheduled] = []
        self.events: list[SimEvent] = []
        self._step = 0  # next step to emit
        self._block: TickBatch | None = None  # current block (ticks of steps [b0, b0 + BLOCK))
        self._block_start = 0

    # -- generation -------------------------------------------------------------------------

    def _schedule_events(self, first: int, count: int) -> None:
        rate = self.event_rate_per_hour * count * self.step_s / 3600.0
        for sym in range(len(self.names)):
            for _ in range(self._event_rng.poisson(rate)):
                self._pending.append(
                    self._draw_event(sym, first + int(self._event_rng.integers(count)))
                )
        self._pending.sort(key=lambda e: e.start)

    def _draw_event(self, sym: int, start: int) -> _Scheduled:
        r = self._event_rng
        kind = EVENT_KINDS[int(r.integers(len(EVENT_KINDS)))]
        minutes = {
            "price_spike": (3, 10),
            "crash": (8, 40),
            "volume_burst": (1, 5),
            "volatility_regime": (20, 60),
        }[kind]
        steps = max(1, round(r.uniform(*minutes) * 60.0 / self.step_s))
        magnitude = {
            "price_spike": math.log1p(r.uniform(0.03, 0.08)),
            "crash": math.log1p(-r.uniform(0.05, 0.15)),
            "volume_burst": r.uniform(5.0, 15.0),
            "volatility_regime": r.uniform(3.0, 5.0),
        }[kind]
        ev = _Scheduled(sym, kind, start, start + steps, magnitude)
        self.events.append(
            SimEvent(self.names[sym], kind, self._ts(start), self._ts(start + steps), magnitude)
        )
        return ev

    def _ts(self, step: int) -> int:
        return self.start_ns + step * self.dt_ns

    def _modifiers(self, first: int, count: int) -> tuple[np.ndarray, ...]:
        shape = (count, len(self.names))
        jump, drift = np.zeros(shape), np.zeros(shape)
        sigma, volume = np.ones(shape), np.ones(shape)
        last = first + count
        for ev in self._pending:
            if ev.start >= last or ev.end <= first:
                continue
            lo, hi = max(ev.start, first) - first, min(ev.end, last) - first
            duration = ev.end - ev.start
            if ev.kind == "price_spike":
                if ev.start >= first:
                    jump[ev.start - first, ev.sym] += ev.magnitude
                drift[lo:hi, ev.sym] -= 0.6 * ev.magnitude / duration  # partial reversion
            elif ev.kind == "crash":  # the first quarter falls, the rest recovers half of it
                fall = max(1, duration // 4)
                steps = np.arange(max(ev.start, first), min(ev.end, last)) - ev.start
                drift[lo:hi, ev.sym] += np.where(
                    steps < fall, ev.magnitude / fall, -0.5 * ev.magnitude / (duration - fall)
                )
            elif ev.kind == "volume_burst":
                volume[lo:hi, ev.sym] *= ev.magnitude
            else:
                sigma[lo:hi, ev.sym] *= ev.magnitude
        self._pending = [e for e in self._pending if e.end > last]
        return jump, drift, sigma, volume

    def _next_block(self) -> TickBatch:
        first = self._block_start + (self.BLOCK if self._block is not None else 0)
        count, n_sym = self.BLOCK, len(self.names)
        self._schedule_events(first, count)
        r = self._rng
        shape = (count, n_sym)
        nu = 4.0
        mixscale = np.sqrt((nu - 2.0) / r.chisquare(nu, count))
        z, xi, vn = r.standard_normal(shape), r.standard_normal(shape), r.standard_normal(shape)
        ju, su, jit = r.random(shape), r.random(shape), r.random(shape)
        jsize = r.laplace(0.0, 1.0, shape)
        mods = self._modifiers(first, count)
        n = count * n_sym
        local = np.empty(n, np.int32)
        ts, price, vol = np.empty(n, np.int64), np.empty(n), np.empty(n)
        side = np.empty(n, np.int8)
        simulate_block(
            self._log_p,
            self._h,
            self._last_absz,
            self._sig,
            self._rho,
            self._phi,
            self._eta,
            self._kappa,
            self._jump_p,
            0.002,
            self._notional,
            z,
            mixscale,
            xi,
            ju,
            jsize,
            vn,
            su,
            jit,
            *mods,
            self.start_ns,
            self.dt_ns,
            first,
            local,
            ts,
            price,
            vol,
            side,
        )
        self._block_start = first
        return TickBatch(
            symbol=self._ids[local],
            ts=ts,
            price=price,
            volume=vol,
            side=side,
            seq=np.zeros(n, np.int64),
            source=np.full(n, self.source_id, np.int16),
        )

    def steps(self, n: int) -> TickBatch:
        """The ticks of the next ``n`` steps (``n`` × number of symbols ticks)."""
        parts: list[TickBatch] = []
        n_sym = len(self.names)
        while n > 0:
            if self._block is None or self._step >= self._block_start + self.BLOCK:
                self._block = self._next_block()
            lo = self._step - self._block_start
            take = min(n, self.BLOCK - lo)
            parts.append(self._block.take(slice(lo * n_sym, (lo + take) * n_sym)))
            self._step += take
            n -= take
        out = TickBatch.concat(parts)
        seq = np.arange(self.seq, self.seq + len(out), dtype=np.int64)
        self.seq += len(out)
        return TickBatch(out.symbol, out.ts, out.price, out.volume, out.side, seq, out.source)

    def batches(self, total_steps: int, steps_per_batch: int = 410) -> Iterator[TickBatch]:
        """As fast as possible: ``total_steps`` steps in batches (about 4,096 ticks by default)."""
        done = 0
        while done < total_steps:
            take = min(steps_per_batch, total_steps - done)
            yield self.steps(take)
            done += take

    @property
    def step(self) -> int:
        return self._step

    def price_now(self) -> dict[str, float]:
        return {n: float(np.exp(p)) for n, p in zip(self.names, self._log_p, strict=True)}


def simulator_source(
    sim: Simulator,
    *,
    realtime: bool = True,
    max_steps: int | None = None,
    poll_ms: float = 10.0,
) -> rx.Observable[TickBatch]:
    """Observable of the simulator's ticks, produced on a thread of its own.

    In real time, step ``k`` is emitted once the wall clock passes its timestamp; otherwise
    batches come as fast as the subscriber takes them. ``max_steps`` ends the stream.
    """

    def subscribe(
        observer: ObserverBase[TickBatch], scheduler: SchedulerBase | None = None
    ) -> Disposable:
        stop = threading.Event()

        def produce() -> None:
            limit = max_steps if max_steps is not None else 2**62
            try:
                if not realtime:
                    for batch in sim.batches(limit - sim.step):
                        if stop.is_set():
                            return
                        observer.on_next(batch)
                else:
                    while not stop.is_set() and sim.step < limit:
                        due = (
                            min((time.time_ns() - sim.start_ns) // sim.dt_ns + 1, limit) - sim.step
                        )
                        if due > 0:
                            observer.on_next(sim.steps(int(due)))
                        stop.wait(poll_ms / 1000.0)
            except Exception as exc:  # report to the pipeline instead of dying silently
                observer.on_error(exc)
                return
            observer.on_completed()

        thread = threading.Thread(target=produce, name="rxpipe-simulator", daemon=True)
        thread.start()
        return Disposable(stop.set)

    return rx.create(subscribe)


def backfill_simulator(
    duration_s: float, *, interval_s: float = 5.0, end_ns: int | None = None, **kwargs: object
) -> tuple[Simulator, int]:
    """A simulator positioned to write ``duration_s`` of history ending at ``end_ns`` (default now).

    Returns the simulator and the number of steps to run.
    """
    end = time.time_ns() if end_ns is None else end_ns
    n_steps = max(1, int(duration_s / interval_s))
    start = end - n_steps * round(interval_s * NS_PER_S)
    sim = Simulator(step_s=interval_s, start_ns=start, **kwargs)  # type: ignore[arg-type]
    return sim, n_steps
