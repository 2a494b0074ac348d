#!/bin/sh
# sparkd runs from its own Python environment (see /usr/share/doc/sparkd/copyright).
exec /usr/lib/sparkd/venv/bin/python -m sparkd "$@"
