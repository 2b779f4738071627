"""``hoist registry``: an OCI distribution-spec v1.1 registry server that runs standalone."""
