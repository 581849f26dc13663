"""3dFWHMx -acf blur estimates: the REML ACF lines of afni_proc.py and their group mean."""
