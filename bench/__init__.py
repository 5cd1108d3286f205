"""Hand-run benchmarks and load checks (not part of CI); see `bench.load`."""
