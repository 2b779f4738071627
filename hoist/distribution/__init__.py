"""Registry client: credentials, the token flow, pull and push (OCI distribution spec)."""
