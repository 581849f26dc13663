"""``python -m afni_group.report OUTPUT_DIR``: rebuild the HTML report of a finished run."""

import sys

from afni_group.report.render import main

sys.exit(main())
