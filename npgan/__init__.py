"""npgan: GANs in NumPy/CuPy with every forward and backward pass written by hand."""
__version__ = "0.1.0"

from . import backend, functional, layers  # noqa: E402,F401
