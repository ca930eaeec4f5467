"""Inference serving: regions, GPU node workers, the router and their faults."""
