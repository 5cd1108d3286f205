"""`python -m gateway`: the same as the `kombo-gateway` console script."""

from gateway.cli import main

raise SystemExit(main())
