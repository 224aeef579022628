"""Tests of outputs/: a package so that test_websocket.py is not core's (pytest imports by basename)."""
