"""``GET /openapi.json`` describes every route the gateway serves, and needs no token."""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.routing import Route

from ferryman_worker.gateway import Gateway, create_app
from tests.harness import Stack

pytestmark = pytest.mark.integration

NOT_API = {"/"}  # the console's page (its /static files are a Mount, not a Route)


async def test_the_openapi_document_covers_every_route(stack: Stack) -> None:
    gateway = Gateway(stack.settings())
    await gateway.open()
    try:
        app = create_app(gateway)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as api:
            response = await api.get("/openapi.json")  # no token
        assert response.status_code == 200
        document = response.json()
        assert document["openapi"].startswith("3.1")
        described = {
            (path, method.upper()) for path, item in document["paths"].items() for method in item
        }
        served = {
            (re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path), method)
            for route in app.routes
            if isinstance(route, Route) and route.path not in NOT_API
            for method in (route.methods or set()) - {"HEAD"}
        }
        assert served - described == set(), "routes missing from gateway/openapi.py"
        assert described - served == set(), "described routes the gateway does not serve"
    finally:
        await gateway.close()
