"""Benchmarks: `make bench` runs them; each module has a main() that prints its figures."""
