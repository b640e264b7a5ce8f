"""weirdgen: the shared library behind the replication book's notebooks."""

__version__ = "0.1.0"
