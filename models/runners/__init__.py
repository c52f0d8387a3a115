"""Runners for released model files in foreign formats (LiteRT/TFLite BlazePose)."""
