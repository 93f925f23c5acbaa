"""Data-set runs: the store (Zarr + Parquet), the local and Ray engines, data-set analysis (SpRAy)."""
