"""Run every benchmark and write bench/results/<name>.json (``make bench``)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench import detectors, machine, nab, quantiles, rules, server, spine

RESULTS = Path(__file__).resolve().parent / "results"
SUITES = {
    "spine": spine.run,
    "detectors": detectors.run,
    "quantiles": quantiles.run,
    "nab": nab.run,
    "rules": rules.run,
    "server": server.run,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "suites", nargs="*", default=list(SUITES), help=f"any of {', '.join(SUITES)}"
    )
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in args.suites:
        print(f"{name}:")
        doc = SUITES[name]()
        doc["machine"] = machine.describe()
        doc["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        (RESULTS / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")
        print(f"  -> {RESULTS / (name + '.json')}")


if __name__ == "__main__":
    main()
