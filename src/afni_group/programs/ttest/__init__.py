"""3dttest++: voxelwise one-/two-sample, paired and covariate t-tests, and its ``-Clustsim``."""
