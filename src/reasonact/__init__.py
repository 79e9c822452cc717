"""reasonact: policies that think before they act."""

__version__ = "0.1.0"
