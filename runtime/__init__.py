"""The runtime: manifest + kernels + data -> parquet feature files."""
