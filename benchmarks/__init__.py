"""Benchmarks: speed and memory claims live here, never in the tests."""
