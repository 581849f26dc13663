"""``python -m afni_group.programs.cli PROGRAM ...`` (same as ``afni-native``)."""

import sys

from afni_group.programs.cli.dispatch import main

sys.exit(main())
