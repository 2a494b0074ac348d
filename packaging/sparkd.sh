#!/bin/sh
# sparkd runs from its own Python environment (see /usr/share/doc/sparkd/copyright).
# -P: never import from the working directory (-m would put it first on the path, and a
# root-run CLI started in a directory holding a `sparkd/` folder would run that code).
exec /usr/lib/sparkd/venv/bin/python -P -m sparkd "$@"
