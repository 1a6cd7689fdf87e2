"""tinyfer: facial expression recognition with compact neural networks."""

__version__ = "0.1.0"
