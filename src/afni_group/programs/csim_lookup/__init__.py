"""1d_tool.py -csim_pthr/-csim_alpha: the cluster-size threshold read off a ClustSim table."""
