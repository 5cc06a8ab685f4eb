"""charlm's benchmarks (not installed with the package); `python -m benchmarks.bench` runs issue 5's."""
