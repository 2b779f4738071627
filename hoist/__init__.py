"""hoist: a Docker-compatible container engine. Build, Ship, Run."""

__version__ = "0.1.0"
# The Docker Engine release whose API and behaviour hoist follows.
DOCKER_COMPAT_VERSION = "27.5.1"
