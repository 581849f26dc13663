"""The bundled demo study: planted truth, noise, and the afni_proc.py-shaped files."""
