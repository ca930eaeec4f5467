"""The data tiers: object stores, feature store, vector index, model registry, pipelines."""
