"""Runs after boot.py on every reset: start the device (kept tiny; the rest is precompiled)."""

import device

device.main()
