"""Optimisation-based fitting of a body model to keypoint tracks (the licence-free path)."""
