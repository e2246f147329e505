"""The seed's rule set, 15 rules across breakouts, support breaks, volume, volatility,
statistical anomalies and trend reversals, in rxpipe's language."""

from __future__ import annotations

from rxpipe.rules.model import Rule

# name, symbol, condition, severity, for, keep_firing_for (instantaneous conditions keep
# firing for 5 minutes after their last true tick, so a burst of anomalies is one alert)
_SEED = [
    ("BTC Price Breakout", "BTCUSDT", "price > 50000", "warning", "0s", "0s"),
    ("ETH Support Break", "ETHUSDT", "price < 3000", "critical", "0s", "0s"),
    ("SOL Extreme Volatility", "SOLUSDT", "price_change_4h > 15", "critical", "0s", "0s"),
    ("BTC Volume Spike", "BTCUSDT", "volume_change_1h > 100", "info", "0s", "0s"),
    ("Price Spike", "*", "anomaly(price_spike) and change_pct(price, 5m) > 1", "high", "0s", "5m"),
    (
        "Price Crash",
        "*",
        "anomaly(price_drop) and change_pct(price, 5m) < -1",
        "critical",
        "0s",
        "5m",
    ),
    ("Sustained Drop", "*", "change_pct(price, 1h) < -5", "high", "1m", "0s"),
    ("Rally", "*", "change_pct(price, 1h) > 5", "medium", "1m", "0s"),
    (
        "Volume Burst",
        "*",
        "anomaly(volume_spike) and volume > 5 * volume_median",
        "medium",
        "0s",
        "5m",
    ),
    ("Volume Drought", "*", "anomaly(volume_drop)", "low", "0s", "5m"),
    ("Volatility Regime Change", "*", "vol_ratio > 3", "high", "30s", "0s"),
    ("Extreme Z-Score", "*", "abs(z_ret) > 6", "high", "0s", "5m"),
    ("Ensemble Anomaly", "*", "ensemble >= 0.95", "high", "0s", "5m"),
    (
        "Bearish Crossover",
        "*",
        "crosses_below(ema(price, 12), ema(price, 26)) and cusum_neg > 5",
        "medium",
        "0s",
        "5m",
    ),
    (
        "Bullish Crossover",
        "*",
        "crosses_above(ema(price, 12), ema(price, 26)) and cusum_pos > 5",
        "medium",
        "0s",
        "5m",
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
                "keep_firing_for": keep,
                "labels": {"team": "markets", "source": "seed"},
                "annotations": {"summary": f"{name} on {{symbol}}: {{value:.6g}}"},
            }
        )
        for k, (name, symbol, condition, severity, for_, keep) in enumerate(_SEED, start=1)
    ]
