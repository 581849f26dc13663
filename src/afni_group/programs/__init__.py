"""The AFNI programs re-implemented: one subpackage per program, in the same layers.

Each program's package holds some of these modules, named the same everywhere:

``core``
    the computation on numpy arrays (no files; invalid arguments raise ``ValueError``);
``formats``
    AFNI's text formats of the program, byte for byte, in both directions (writer and parser);
``files``
    the file-level function: datasets and text files in, files out, as the AFNI program does.

Bigger programs split their core further (``clustsim.simulate``, ``clustsim.noise``,
``clustsim.kernels``, ``clustsim.afni_fft``). The argv drop-ins (``afni-native PROG ...``) are
in :mod:`.cli`; the checks several programs (and the plan) share — sidedness, NN, probability
lists, ACF ranges — in :mod:`.checks`. Nothing here imports an engine, the pipeline or the
report.
"""
