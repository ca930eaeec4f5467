"""Network faults: the TCP fault proxies every tier's traffic passes through."""
