"""`python -m gateway.cli`: the `partner-gateway` command (how `serve --with-worker` starts one)."""

from . import main

raise SystemExit(main())
