"""Benchmarks of geoplan on synthetic cities (``python -m benchmarks``)."""
