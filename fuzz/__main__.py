"""``python -m fuzz``: see :mod:`fuzz.cli`."""

from .cli import main

raise SystemExit(main())
