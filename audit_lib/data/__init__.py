"""Data: the schema contract, demo data, source systems, ingest and the Parquet mart."""
