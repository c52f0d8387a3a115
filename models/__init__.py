"""Torch modules and maths, in rooms by purpose; no files of the cache, no Prefect, no Parquet."""
