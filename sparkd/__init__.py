"""sparkd: a socket-activated OpenAI gateway that runs one model at a time as podman Quadlet units."""

__version__ = "0.1.0"
