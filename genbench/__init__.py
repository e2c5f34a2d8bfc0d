"""genbench: benchmark deep generative model families side by side."""

__version__ = "0.1.0"
