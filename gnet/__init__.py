"""G-Nets: layers, training, EHD conversion and Hamming-distance inference, built on :mod:`hdc`."""

__version__ = "0.1.0"
