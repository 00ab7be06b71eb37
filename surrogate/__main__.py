"""``python -m surrogate``: see :mod:`surrogate.cli`."""

import sys

from .cli import main

sys.exit(main())
