"""Training and evaluation: losses, dataset readers, synthetic data, training loops, protocols."""
