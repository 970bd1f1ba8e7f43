"""perfgate: a statistical performance gate for HTTP services."""

__version__ = "0.1.0"
