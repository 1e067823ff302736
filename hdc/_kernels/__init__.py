"""Numba kernels of :mod:`hdc` and :mod:`gnet` (private), compiled through :func:`hdc._kernels.runtime.jit`.

Public functions validate their inputs and call these kernels; nothing here checks arguments.
"""
