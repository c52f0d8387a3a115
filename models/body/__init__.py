"""Parametric body models (SMPL, Anny) and the licence-free SMPL-layout test body."""
