"""The lab's supervisor: its daemon, control API, client and fault ledger."""
