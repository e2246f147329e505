"""rxpipe benchmarks: ``python -m bench`` (``make bench``) writes JSON under bench/results/."""
