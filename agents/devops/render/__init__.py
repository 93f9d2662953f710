"""Renderers: one module per artifact family, each a pure ``render(spec) -> {path: content}``."""
