"""The `synapse` command line: thin shells that format what the Store returns."""
