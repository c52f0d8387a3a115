"""Neural networks and their checkpoints: backbones, pose nets, the paper's temporal model, flow estimators."""
