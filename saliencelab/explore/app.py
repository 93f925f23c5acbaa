"""The explorer's web app: a small Starlette app over :class:`saliencelab.explore.pages.ExplorerData`.

Routes (all ``GET``):

- ``/``: the page (``static/index.html``); ``/static/...``: its script and style,
  served only from the package's ``static`` folder;
- ``/api/run``, ``/api/table?...``, ``/api/sample/{i}``, ``/api/neighbours/{i}?method=&input=&count=``,
  ``/api/tokens/{i}?method=&input=&<controls>``, ``/api/distributions``, ``/api/agreement?input=``,
  ``/api/spray``, ``/api/spray/{class}``: JSON;
- ``/tile/input/{i}?input=``, ``/tile/map/{i}?method=&input=&<controls>``,
  ``/tile/spray/{class}?input=&<controls>``: PNG (controls: :class:`saliencelab.explore.tiles.Controls`).

A request the run cannot answer gets JSON ``{"error": ...}``: 400 for a bad
parameter, 404 for an unknown sample, method, input or class. Responses are
computed per request (tiles and pages on demand, nothing rendered ahead), and
tiles carry a cache header, since a run does not change while it is shown.

Example
-------
>>> from starlette.testclient import TestClient
>>> from saliencelab.explore.synthetic import synthetic_run
>>> client = TestClient(create_app(synthetic_run(10)))
>>> client.get("/api/table", params={"size": 3}).json()["pages"]
4
>>> client.get("/api/sample/99").status_code
404
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from saliencelab.explore.pages import ExplorerData

STATIC = Path(__file__).parent / "static"
"""The page's HTML, script and style (shipped in the wheel)."""

TILE_CACHE = "private, max-age=86400"
"""Tiles do not change while a run is shown: the browser keeps them a day."""


def create_app(run: Any, *, cache_size: int = 2) -> Starlette:
    """Return the explorer's ASGI app for ``run`` (a ``Run`` from ``sl.load_run``, or any object with its attributes).

    Example
    -------
    >>> from starlette.testclient import TestClient
    >>> from saliencelab.explore.synthetic import synthetic_run
    >>> TestClient(create_app(synthetic_run(4))).get("/tile/map/0", params={"cmap": "jet"}).json()["error"][:25]
    "cmap: 'jet' is not offere"
    """
    data = ExplorerData(run, cache_size)

    def params(request: Request) -> dict[str, Any]:
        found: dict[str, Any] = dict(request.query_params)
        found["range"] = request.query_params.getlist("range")
        return found

    def json_route(path: str, answer) -> Route:
        def endpoint(request: Request) -> Response:
            return _answer(lambda: JSONResponse(answer(request), headers={"Cache-Control": "no-store"}))

        return Route(path, endpoint)

    def tile_route(path: str, answer) -> Route:
        def endpoint(request: Request) -> Response:
            return _answer(lambda: Response(answer(request), media_type="image/png",
                                            headers={"Cache-Control": TILE_CACHE}))  # fmt: skip

        return Route(path, endpoint)

    def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    routes = [
        Route("/", index),
        json_route("/api/run", lambda r: data.run_info()),
        json_route("/api/table", lambda r: data.table(params(r))),
        json_route("/api/sample/{index:int}", lambda r: data.sample(r.path_params["index"])),
        json_route("/api/neighbours/{index:int}", lambda r: data.neighbours(r.path_params["index"], params(r))),
        json_route("/api/tokens/{index:int}", lambda r: data.tokens(r.path_params["index"], params(r))),
        json_route("/api/distributions", lambda r: data.distributions()),
        json_route("/api/agreement", lambda r: data.agreement(params(r))),
        json_route("/api/spray", lambda r: data.spray()),
        json_route("/api/spray/{key}", lambda r: data.spray_class(r.path_params["key"])),
        tile_route("/tile/input/{index:int}", lambda r: data.input_tile(r.path_params["index"], params(r))),
        tile_route("/tile/map/{index:int}", lambda r: data.map_tile(r.path_params["index"], params(r))),
        tile_route("/tile/spray/{key}", lambda r: data.spray_tile(r.path_params["key"], params(r))),
        Mount("/static", StaticFiles(directory=STATIC, follow_symlink=False), name="static"),
    ]
    return Starlette(routes=routes)


def _answer(respond) -> Response:
    """The response, or a JSON error: 400 for a bad parameter, 404 for something the run does not have."""
    try:
        return respond()
    except KeyError as error:
        return _error(404, error.args[0] if error.args else "not found")
    except ValueError as error:
        return _error(400, str(error))


def _error(status: int, message: str) -> Response:
    return Response(json.dumps({"error": str(message)}), status_code=status, media_type="application/json")
