"""Accuracy benchmark (issue 12): ground-truth clips rendered from mocap (`render.build_set`) and their scoring."""
