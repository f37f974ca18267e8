"""Per-task pipelines: decode → steps → track → aggregate (and, later, chunk → archive)."""
