"""``python -m yolo_io``: the ``yolo-io`` command (see ``yolo_io._cli``)."""

import sys

from ._cli import main

sys.exit(main())
