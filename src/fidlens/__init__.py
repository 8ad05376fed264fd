"""fidlens: exact FID, and tools that show what it measures."""

__version__ = "0.1.0"
