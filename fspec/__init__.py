"""fspec: YAML feature specs compiled to numba kernels and run into parquet."""

__version__ = "0.1.0"
