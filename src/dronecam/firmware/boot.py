"""Runs first on every reset: nothing but a clean heap, so a bad main.py can still be replaced."""

import gc

gc.collect()
