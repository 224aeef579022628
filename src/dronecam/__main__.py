"""`python -m dronecam` is the `dronecam` command."""

from .cli import main

raise SystemExit(main())
