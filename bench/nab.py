"""rxpipe's ensemble on the NAB subset in ../shared/data/nab, scored by ../shared/tools/nab_score.py.

Every file goes through ``rxpipe score`` with the same default parameters; no labels are read
here. Writes bench/results/nab/ (one CSV per file) and bench/results/nab.json.

NAB's score moves by several points for small changes of a detector's parameters (39 windows,
one threshold), so a change is judged on the settings around the defaults too: ``sensitivity``
scores a grid of window and reference lengths with and without the robust z-scores, with the
scorer's own functions.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data" / "nab" / "data"
SCORER = SHARED / "tools" / "nab_score.py"
OUT = ROOT / "bench" / "results" / "nab"

PUBLISHED = {
    "ARTime": 68.77,
    "numenta HTM": 64.85,
    "windowed Gaussian": 28.16,
    "random": 17.76,
    "null": 0.0,
}


def run() -> dict[str, Any]:
    from rxpipe.cli import main as rxpipe

    shutil.rmtree(OUT, ignore_errors=True)
    files = sorted(DATA.rglob("*.csv"))
    for f in files:
        target = OUT / f.relative_to(DATA)
        if rxpipe(["score", str(f), "--out", str(target)]) != 0:
            raise SystemExit(f"rxpipe score failed on {f}")
    done = subprocess.run(
        [sys.executable, str(SCORER), str(OUT), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    scores = json.loads(done.stdout)
    print(
        f"  rxpipe ensemble on {scores['files']} files / {scores['windows']} windows: "
        f"standard {scores['standard']}, low FP {scores['reward_low_FP_rate']}, low FN {scores['reward_low_FN_rate']}"
    )
    return {
        "benchmark": "nab",
        "detector": "rxpipe ensemble (default parameters)",
        "scores": scores,
        "published_on_this_subset_standard": PUBLISHED,
        "sensitivity": sensitivity(),
    }


def sensitivity() -> dict[str, Any]:
    """Standard scores over a grid of (window, reference ticks), robust z-scores on and off."""
    from rxpipe.operators.series import SeriesConfig, score_series

    spec = importlib.util.spec_from_file_location("nab_score", SCORER)
    assert spec is not None and spec.loader is not None
    scorer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scorer)
    windows = json.loads((SHARED / "data" / "nab" / "labels" / "combined_windows.json").read_text())
    series = {}
    for key in sorted(windows):
        df = pd.read_csv(DATA / key)
        ts = pd.to_datetime(df["timestamp"], utc=True).to_numpy("datetime64[ns]").astype(np.int64)
        series[key] = ([scorer.norm_ts(t) for t in df["timestamp"]], df["value"].to_numpy(), ts)
    w = scorer.PROFILES["standard"]

    def standard(cfg: SeriesConfig) -> float:
        pts = []
        for key, (stamps, values, ts) in series.items():
            scores = score_series(values, ts, cfg).tolist()
            pts += scorer.file_points(stamps, scores, windows[key], key, w)
        scored = sorted({p[2] for p in pts if p[2] is not None})
        _, raw = scorer.sweep(pts, scored, w)
        null, perfect = -w["fn"] * len(scored), w["tp"] * sum(len(v) for v in windows.values())
        return round(100.0 * (raw - null) / (perfect - null), 2)

    grid = []
    base = SeriesConfig()
    for ref in (700, 1000, 1500, 3000):
        for window in (100, 120, 150, 180, 250):
            cfg = dataclasses.replace(base, ref_ticks=ref, window=window)
            row = {
                "ref_ticks": ref,
                "window": window,
                "classic": standard(dataclasses.replace(cfg, robust=False)),
                "robust": standard(cfg),
            }
            grid.append(row)
            print(
                f"  ref {ref:5d} window {window:4d}: classic {row['classic']:6.2f}  robust {row['robust']:6.2f}"
            )
    better = sum(r["robust"] > r["classic"] for r in grid)
    mean = float(np.mean([r["robust"] - r["classic"] for r in grid]))
    print(
        f"  robust z-scores better at {better} of {len(grid)} settings, by {mean:+.2f} on average"
    )
    return {
        "grid": grid,
        "robust_better": better,
        "settings": len(grid),
        "mean_gain": round(mean, 2),
    }


if __name__ == "__main__":
    doc = run()
    (ROOT / "bench" / "results" / "nab.json").write_text(json.dumps(doc, indent=2) + "\n")
