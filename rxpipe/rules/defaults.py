"""The seed's rule set, 15 rules across breakouts, support breaks, volume, volatility,
statistical anomalies and trend reversals, in rxpipe's language."""

from __future__ import annotations

from rxpipe.rules.model import Rule

_SEED = [
    ("BTC Price Breakout", "BTCUSDT", "price > 50000", "warning", "0s"),
    ("ETH Support Break", "ETHUSDT", "price < 3000", "critical", "0s"),
    ("SOL Extreme Volatility", "SOLUSDT", "price_change_4h > 15", "critical", "0s"),
    ("BTC Volume Spike", "BTCUSDT", "volume_change_1h > 100", "info", "0s"),
    ("Price Spike", "*", "anomaly(price_spike) and severity >= high", "high", "0s"),
    ("Price Crash", "*", "anomaly(price_drop) and severity >= high", "critical", "0s"),
    ("Sustained Drop", "*", "change_pct(price, 1h) < -5", "high", "1m"),
    ("Rally", "*", "change_pct(price, 1h) > 5", "medium", "1m"),
    ("Volume Burst", "*", "volume > 5 * volume_median and zscore(volume, 100) > 4", "medium", "0s"),
    ("Volume Drought", "*", "anomaly(volume_drop)", "low", "0s"),
    ("Volatility Regime Change", "*", "vol_ratio > 3", "high", "30s"),
    ("Extreme Z-Score", "*", "abs(z_ret) > 6", "high", "0s"),
    ("Ensemble Anomaly", "*", "ensemble >= 0.95", "high", "0s"),
    (
        "Bearish Crossover",
        "*",
        "crosses_below(ema(price, 12), ema(price, 26)) and cusum_neg > 5",
        "medium",
        "0s",
    ),
    (
        "Bullish Crossover",
        "*",
        "crosses_above(ema(price, 12), ema(price, 26)) and cusum_pos > 5",
        "medium",
        "0s",
    ),
]


def seed_rules() -> list[Rule]:
    """The 15 default rules (ids are stable: ``seed-01`` ... ``seed-15``)."""
    return [
        Rule.model_validate(
            {
                "id": f"seed-{k:02d}",
                "name": name,
                "symbol": symbol,
                "condition": condition,
                "severity": severity,
                "for": for_,
                "labels": {"team": "markets", "source": "seed"},
                "annotations": {"summary": f"{name} on {{symbol}}: {{value:.6g}}"},
            }
        )
        for k, (name, symbol, condition, severity, for_) in enumerate(_SEED, start=1)
    ]
