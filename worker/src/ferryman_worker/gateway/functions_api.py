"""``GET /v1/functions`` and ``GET /v1/functions/{id}``: what workers have registered."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ferryman_worker.storage import catalog

if TYPE_CHECKING:
    from ferryman_worker.gateway.app import Gateway


class FunctionsApi:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def list(self, request: Request) -> Response:
        return JSONResponse({"data": await catalog.list_functions(self.gateway.pool)})

    async def get(self, request: Request) -> Response:
        function_id = request.path_params["function_id"]
        found = await catalog.list_functions(self.gateway.pool, function_id)
        if not found:
            return JSONResponse(
                {"error": f"no function {function_id!r}; GET /v1/functions lists them",
                 "status": 404},
                status_code=404,
            )  # fmt: skip
        return JSONResponse({"data": found[0]})
