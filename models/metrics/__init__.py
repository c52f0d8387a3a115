"""Metrics: accuracy against ground truth (MPJPE, PA-MPJPE, ...) and motion quality without it."""
