"""The app's runtime against the test database: start-up leaves the real state untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import reactivex as rx

from rxpipe.config import Settings
from rxpipe.model import SymbolTable, TickBatch
from rxpipe.rules.engine import AlertEngine
from rxpipe.runtime import Runtime


def test_warm_up_runs_every_stage_on_throwaway_state(pg_url: str, tmp_path: Path) -> None:
    settings = Settings.load(env={"RXPIPE_DATABASE_URL": pg_url}, data_dir=tmp_path)
    rt = Runtime(settings, symbols=SymbolTable())
    rt.open_storage()
    rt.build(rx.empty())
    assert rt.detectors is not None and rt.alert_sink is not None
    engine = rt.alert_sink.engine
    assert len(engine.rules) == 15  # the seed rules, loaded from the database
    rt.warm_up()
    # nothing of the made-up ticks reached the app's symbols, detectors or rules: the real
    # stream gives what it gives a fresh runtime
    assert len(rt.symbols) == 0
    assert rt.detectors.state.n_symbols == 0
    btc = rt.symbols.intern("BTCUSDT")
    b = TickBatch.from_arrays(
        symbol=[btc] * 3, ts=[1, 2, 3], price=[49e3, 51e3, 52e3], volume=[1.0] * 3
    )
    signals = rt.detectors.update(b)
    assert np.isnan(signals.columns["price_mean"][0])  # warming up from its first tick
    fresh = AlertEngine(engine.rules, rt.symbols)
    assert (
        [(e.rule_id, e.state, e.at) for e in engine.update(signals)]
        == [(e.rule_id, e.state, e.at) for e in fresh.update(signals)]
        == [("seed-01", "firing", 2)]
    )  # BTC Price Breakout: price > 50000
    rt.stop(5.0)


def test_the_detector_methods_setting_reaches_the_detectors(tmp_path: Path) -> None:
    settings = Settings.load(env={"RXPIPE_DETECTORS_METHODS": "ci,horizons"}, data_dir=tmp_path)
    rt = Runtime(settings, symbols=SymbolTable())
    rt.build(rx.empty())
    assert rt.detectors is not None and rt.detectors.config.methods == ("ci", "horizons")
    b = TickBatch.from_arrays(symbol=[0] * 40, ts=range(40), price=[1.0] * 40, volume=[1.0] * 40)
    rt.symbols.intern("BTCUSDT")
    cols = rt.detectors.update(b).columns
    assert np.isnan(cols["ret_q1"]).all() and not np.isnan(cols["drift_mean"]).all()
    rt.stop(5.0)
