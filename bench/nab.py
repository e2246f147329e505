"""rxpipe's ensemble on the NAB subset in ../shared/data/nab, scored by ../shared/tools/nab_score.py.

Every file goes through ``rxpipe score`` with the same default parameters; no labels are read
here. Writes bench/results/nab/ (one CSV per file) and bench/results/nab.json.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

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
    }


if __name__ == "__main__":
    doc = run()
    (ROOT / "bench" / "results" / "nab.json").write_text(json.dumps(doc, indent=2) + "\n")
