"""3dClusterize: clusters of a thresholded statistic, their maps and report."""
