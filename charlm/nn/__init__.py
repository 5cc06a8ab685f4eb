"""Layers as pure functions: forward returns a cache, backward sits beside it."""
