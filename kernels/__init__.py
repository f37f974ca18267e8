"""Pure compute on arrays: no I/O, no Ray, no imports from the other top-level packages.

Each kernel has a NumPy reference implementation; GPU variants (CuPy/torch) are checked
against it.
"""
