"""The typed contract: pydantic models of every request and response, and the one error model.

``api/`` validates and documents with it, ``pipelines/`` re-validates stored requests with it,
``store/`` speaks its filter language; it imports only ``models`` (class names) and ``kernels``.
"""
