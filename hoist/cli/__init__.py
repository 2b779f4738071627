"""The ``hoist`` command-line client (entry point: :func:`hoist.cli.main.run`)."""
