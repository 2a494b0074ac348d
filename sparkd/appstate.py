"""What the application holds, by typed key: each long-lived piece of the daemon, set up in `sparkd.app`."""

from __future__ import annotations

from aiohttp import web

from sparkd.auth import KeyRing
from sparkd.catalogue import Catalogue
from sparkd.events import EventHub
from sparkd.forward import Forwarder
from sparkd.metrics import Metrics
from sparkd.peers import Peers
from sparkd.response_owners import ResponseOwners
from sparkd.runtime import Runtime
from sparkd.sessions import Sessions
from sparkd.settings import Settings
from sparkd.upstream import EnginePool

SETTINGS = web.AppKey("settings", Settings)
CATALOGUE = web.AppKey("catalogue", Catalogue)
RUNTIME = web.AppKey("runtime", Runtime)
METRICS = web.AppKey("metrics", Metrics)
ENGINES = web.AppKey("engines", EnginePool)
FORWARDER = web.AppKey("forwarder", Forwarder)
STARTED_AT = web.AppKey("started_at", float)  # monotonic time the app started
RESPONSES = web.AppKey("responses", ResponseOwners)  # which model stored each response
EVENTS = web.AppKey("events", EventHub)  # what the dashboard watches
KEYS = web.AppKey("keys", KeyRing)
PEERS = web.AppKey("peers", Peers)  # other sparkds whose models this one answers for
SESSIONS = web.AppKey("sessions", Sessions)  # the dashboard's signed session cookies
