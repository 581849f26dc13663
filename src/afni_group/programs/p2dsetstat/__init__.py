"""p2dsetstat: a p-value to the statistic threshold of a sub-brick."""
