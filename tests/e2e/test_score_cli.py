"""`rxpipe score` on NAB-format files: shape, range, causality, and clear errors."""

import csv
from pathlib import Path

import numpy as np

from ..conftest import SHARED, run_rxpipe

NYC = SHARED / "data" / "nab" / "data" / "realKnownCause" / "nyc_taxi.csv"


def read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_score_writes_timestamp_value_score(tmp_path: Path) -> None:
    out = tmp_path / "nyc.csv"
    done = run_rxpipe("score", str(NYC), "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows, src = read(out), read(NYC)
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score"]
    assert [r["timestamp"] for r in rows] == [r["timestamp"] for r in src]
    scores = np.array([float(r["anomaly_score"]) for r in rows])
    assert ((scores >= 0) & (scores <= 1)).all() and scores.max() > 0.9


def test_scores_are_causal(tmp_path: Path) -> None:
    """Scoring a prefix of the file gives the same scores for that prefix."""
    head = tmp_path / "head.csv"
    lines = NYC.read_text().splitlines()
    head.write_text("\n".join(lines[:3001]) + "\n")
    run_rxpipe("score", str(NYC), "--out", str(tmp_path / "all.csv"))
    run_rxpipe("score", str(head), "--out", str(tmp_path / "part.csv"))
    full = [r["anomaly_score"] for r in read(tmp_path / "all.csv")][:3000]
    part = [r["anomaly_score"] for r in read(tmp_path / "part.csv")]
    assert part == full


def test_bad_rows_and_columns_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:05:00,x\n")
    done = run_rxpipe("score", str(bad), "--out", str(tmp_path / "o.csv"))
    assert done.returncode == 2 and f"{bad}:3: bad value 'x'" in done.stderr
    done = run_rxpipe("score", str(bad), "--out", str(tmp_path / "o.csv"), "--column", "price")
    assert done.returncode == 2 and "needs columns timestamp and price" in done.stderr
