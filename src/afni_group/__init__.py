"""afni-group: AFNI-style group analysis of afni_proc.py results as a BIDS-App."""

__version__ = "0.1.0"
