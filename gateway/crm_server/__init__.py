"""A small CRM speaking a subset of HubSpot's CRM API, for tests and ``panorama demo``.

Routes (JSON, ``Authorization: Bearer <token>``)::

    POST /crm/v3/objects/{objectType}/search        filterGroups, sorts, properties, limit, after
    POST /crm/v3/objects/{objectType}/batch/read    {"inputs": [{"id"}], "properties": [...]}
    GET  /crm/v3/objects/{objectType}[/{id}]        limit, after, properties
    POST /crm/v4/associations/{from}/{to}/batch/read
    GET  /crm/v3/properties/{objectType}
    GET  /healthz

The seed format is described in :mod:`gateway.crm_server.store`. This package imports no
other gateway module: it stands for a third-party service.
"""

from gateway.crm_server.app import create_crm_app
from gateway.crm_server.background import ServerHandle, load_seed, run, serve_in_background
from gateway.crm_server.demo import DEMO_SEED
from gateway.crm_server.gate import Fault
from gateway.crm_server.search import SearchLimits

__all__ = ["DEMO_SEED", "Fault", "SearchLimits", "ServerHandle", "create_crm_app", "load_seed",
           "run", "serve_in_background"]
