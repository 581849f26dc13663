"""``afni-native PROGRAM [options]``: the argv drop-ins, one module per AFNI program, and the
dispatcher (:mod:`.dispatch`)."""
