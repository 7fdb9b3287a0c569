"""``python -m smpsim``."""

from smpsim.cli import main

raise SystemExit(main())
