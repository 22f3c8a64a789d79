"""Benchmarks run only with `make bench` (pytest -m benchmark benchmarks -s)."""
