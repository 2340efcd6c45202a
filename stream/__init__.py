"""customs-stream: e-commerce customs warehouse stream processor for Kazakhstan and the EAEU."""

__version__ = "0.1.0"
