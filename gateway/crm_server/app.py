"""The starlette app: HubSpot's CRM v3 objects, v4 associations and v3 properties routes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.crm_server.errors import HubSpotError, JSONResponse, error_body, invalid
from gateway.crm_server.gate import Gate, GateState, RateWindow
from gateway.crm_server.search import SearchLimits, search
from gateway.crm_server.store import Store

BATCH_READ_INPUTS = 100
ASSOCIATION_INPUTS = 1000
ASSOCIATIONS_PAGE = 500
LIST_PAGE = 100
HUBSPOT_LIMITS = SearchLimits()


async def read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; a 400 that says what is wrong otherwise."""
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"Invalid input JSON on line {exc.lineno}, column {exc.colno}: "
                      f"{exc.msg}") from None
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    request.state.record["body"] = body
    return body


def _store(request: Request) -> tuple[Store, str]:
    store: Store = request.app.state.store
    return store, store.resolve(request.path_params["object_type"])


def _inputs(body: Mapping[str, Any], most: int) -> list[dict[str, Any]]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not all(
            isinstance(i, Mapping) and isinstance(i.get("id"), (str, int)) for i in inputs):
        raise invalid("'inputs' must be a list of {\"id\": ...} objects")
    if len(inputs) > most:
        raise invalid(f"Too many inputs: {len(inputs)}; a batch takes at most {most}")
    return [dict(i, id=str(i["id"])) for i in inputs]


def _query_properties(request: Request) -> list[str] | None:
    values = request.query_params.getlist("properties")
    if not values:
        return None
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def _batch_answer(results: list[Any], errors: list[dict[str, Any]]) -> JSONResponse:
    """HubSpot's batch answer: 207 Multi-Status when some inputs failed."""
    answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if errors:
        answer.update(numErrors=len(errors), errors=errors)
    return JSONResponse(answer, status_code=207 if errors else 200)


async def search_objects(request: Request) -> Response:
    store, object_type = _store(request)
    body = await read_json(request)
    state = request.app.state
    return JSONResponse(search(store, object_type, body, page_limit=state.page_limit,
                               limits=state.limits))


async def batch_read(request: Request) -> Response:
    store, object_type = _store(request)
    body = await read_json(request)
    inputs = _inputs(body, BATCH_READ_INPUTS)
    if body.get("idProperty") not in (None, "hs_object_id"):
        raise invalid("this server reads batches by hs_object_id only")
    requested = body.get("properties")
    if requested is not None and not isinstance(requested, list):
        raise invalid("properties must be a list of property names")
    objects = store.objects[object_type]
    found, missing = [], []
    for object_id in dict.fromkeys(i["id"] for i in inputs):
        obj = objects.get(object_id)
        if obj is None:
            missing.append(object_id)
        else:
            found.append(store.view(object_type, obj, requested))
    errors = [error_body(
        "OBJECT_NOT_FOUND", f"Could not get some {object_type} objects, they may be deleted or "
        "not exist. Check that ids are valid.", context={"ids": missing})] if missing else []
    return _batch_answer(found, errors)


async def list_objects(request: Request) -> Response:
    store, object_type = _store(request)
    params = request.query_params
    try:
        limit, offset = int(params.get("limit", "10")), int(params.get("after", "0"))
    except ValueError:
        raise invalid("'limit' and 'after' must be integers") from None
    if not 1 <= limit <= LIST_PAGE:
        raise invalid(f"limit must be between 1 and {LIST_PAGE}")
    objects = list(store.objects[object_type].values())
    page = objects[offset:offset + limit]
    answer: dict[str, Any] = {"results": [
        store.view(object_type, o, _query_properties(request)) for o in page]}
    if offset + limit < len(objects):
        answer["paging"] = {"next": {"after": str(offset + limit),
                                     "link": f"?after={offset + limit}"}}
    return JSONResponse(answer)


async def get_object(request: Request) -> Response:
    store, object_type = _store(request)
    obj = store.objects[object_type].get(request.path_params["object_id"])
    if obj is None:
        raise HubSpotError(404, "OBJECT_NOT_FOUND", "resource not found")
    return JSONResponse(store.view(object_type, obj, _query_properties(request)))


async def read_associations(request: Request) -> Response:
    store: Store = request.app.state.store
    from_type = store.resolve(request.path_params["from_type"])
    to_type = store.resolve(request.path_params["to_type"])
    inputs = _inputs(await read_json(request), ASSOCIATION_INPUTS)
    links = store.links.get((from_type, to_type), {})
    association_type = store.association_type(from_type, to_type)
    results, errors = [], []
    for item in inputs:
        ids = links.get(item["id"], [])
        if not ids:
            errors.append(error_body(
                "OBJECT_NOT_FOUND", f"No {to_type} is associated with {from_type} {item['id']}.",
                subCategory="crm.associations.NO_ASSOCIATIONS_FOUND",
                context={"fromObjectId": [item["id"]]}))
            continue
        token = str(item.get("after") or "0")
        if not token.isdigit():
            raise invalid(f"'after' must be a paging token from a previous answer, not '{token}'")
        start = int(token)
        page = ids[start:start + ASSOCIATIONS_PAGE]
        result: dict[str, Any] = {"from": {"id": item["id"]}, "to": [
            {"toObjectId": int(i), "associationTypes": [association_type]} for i in page]}
        if start + ASSOCIATIONS_PAGE < len(ids):
            result["paging"] = {"next": {"after": str(start + ASSOCIATIONS_PAGE)}}
        results.append(result)
    return _batch_answer(results, errors)


async def list_properties(request: Request) -> Response:
    store, object_type = _store(request)
    catalogue = store.properties[object_type].values()
    return JSONResponse({"results": [p.describe() for p in catalogue]})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _hubspot_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HubSpotError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    category = "OBJECT_NOT_FOUND" if exc.status_code == 404 else "VALIDATION_ERROR"
    message = "resource not found" if exc.status_code == 404 else str(exc.detail)
    return JSONResponse(error_body(category, message), status_code=exc.status_code,
                        headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    return JSONResponse(error_body("INTERNAL_ERROR", "internal error"), status_code=500)


ROUTES = [
    Route("/healthz", healthz),
    Route("/crm/v3/objects/{object_type}/search", search_objects, methods=["POST"]),
    Route("/crm/v3/objects/{object_type}/batch/read", batch_read, methods=["POST"]),
    Route("/crm/v3/objects/{object_type}", list_objects),
    Route("/crm/v3/objects/{object_type}/{object_id}", get_object),
    Route("/crm/v4/associations/{from_type}/{to_type}/batch/read", read_associations,
          methods=["POST"]),
    Route("/crm/v3/properties/{object_type}", list_properties),
]


def create_crm_app(seed: Mapping[str, Iterable[Mapping[str, Any]]], *, token: str | None,
                   page_limit: int = 100, rate_limit: int | None = None,
                   rate_window: float = 1.0, card_properties: Iterable[str] = ("loyalty_card",),
                   limits: SearchLimits = HUBSPOT_LIMITS) -> Starlette:
    """A CRM speaking a subset of HubSpot's API over the objects of ``seed``.

    ``token``: the bearer token every ``/crm/`` request must carry (None: no auth).
    ``page_limit``: most results per search page, whatever ``limit`` asks (to test paging).
    ``rate_limit``: most requests per ``rate_window`` seconds, then 429 with ``Retry-After``.
    ``card_properties``: properties that get a calculated ``<name>_normalized`` search property
    (spaces and dashes removed, upper-cased), as a portal admin would define one.
    ``limits``: HubSpot's search limits. Tests queue answers on ``app.state.faults`` (see
    :class:`~gateway.crm_server.gate.Fault`) and read ``app.state.requests``.
    """
    store = Store(seed, card_properties=card_properties)
    gate_state = GateState()
    rate = RateWindow(rate_limit, rate_window) if rate_limit else None
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(Gate, token=token, state=gate_state, rate=rate)],
        exception_handlers={HubSpotError: _hubspot_error, HTTPException: _http_error,
                            Exception: _server_error},
    )
    app.state.store = store
    app.state.page_limit = page_limit
    app.state.limits = limits
    app.state.faults = gate_state.faults
    app.state.requests = gate_state.requests
    return app
