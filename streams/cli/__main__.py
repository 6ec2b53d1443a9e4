"""``python -m latentline.streams.cli``: the same as the ``latentline`` command."""

import sys

from latentline.streams.cli.main import main

sys.exit(main())
