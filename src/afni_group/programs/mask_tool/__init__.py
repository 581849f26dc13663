"""3dmask_tool: the group mask (-frac) from subject masks."""
