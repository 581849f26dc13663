"""The ``afni-native PROGRAM`` command lines: AFNI's options parsed into calls of the
file-level functions (one module per program)."""
