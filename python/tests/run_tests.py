"""Runs the Python module's tests (ctest test `python`); exit 77 (skipped) when NumPy is not
installed, 0 when every test passed, 1 otherwise."""
import os
import sys
import unittest

try:
    import numpy  # noqa: F401
except ImportError:
    print("skip: NumPy is not installed")
    sys.exit(77)

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, ".."))
suite = unittest.defaultTestLoader.discover(here, pattern="test_*.py")
result = unittest.TextTestRunner(verbosity=2).run(suite)
sys.exit(0 if result.wasSuccessful() else 1)
