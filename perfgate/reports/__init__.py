"""Rendering a verdict or a run: shared text, terminal, Markdown, HTML with charts, JUnit XML."""
