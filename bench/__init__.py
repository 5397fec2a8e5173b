"""Benchmarks: ``make bench`` (see README.md)."""
