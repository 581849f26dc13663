"""3dClustSim: Monte-Carlo cluster-size thresholds from the ACF noise model."""
