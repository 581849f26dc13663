"""3dMEMA: mixed-effects meta-analysis of subject betas and t statistics."""
