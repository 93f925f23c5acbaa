"""Write the explorer's pages as a self-contained static folder, to open from disk or share.

The folder holds the same page and script as the live explorer, the answers
of the API as small script files (``data/*.js``, which a page opened from disk
may load where it may not fetch JSON) and the tiles as PNG files (``tiles/``).
The page filters, sorts and pages the exported rows itself.

The size is bounded by ``limit``: only the first ``limit`` samples of the run
are exported (their rows, details, neighbours among them, and tiles), with the
maps in the four sign and clipping settings at the default percentile, colour
map and opacity (a static page cannot draw new tiles: it offers those settings
only). That is ``limit * (1 + 4 * methods * inputs)`` tiles and
``limit * (1 + methods * inputs)`` data files, plus the method and SpRAy pages.
File names hold numbers and fixed words only, never a name from the run.

Example
-------
>>> import tempfile
>>> from pathlib import Path
>>> from saliencelab.explore.synthetic import synthetic_run
>>> folder = export(synthetic_run(6, methods=("gradient",)), Path(tempfile.mkdtemp()) / "site", limit=4)
>>> sorted(p.name for p in folder.iterdir())
['data', 'index.html', 'static', 'tiles']
>>> len(list((folder / "tiles").glob("map-*.png")))
16
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from saliencelab.explore.app import STATIC
from saliencelab.explore.pages import ExplorerData
from saliencelab.explore.query import completeness_passes, grid_row
from saliencelab.explore.tiles import CLIPS, SIGNS
from saliencelab.explore.view import jsonable

LIVE_MARK = 'data-mode="live"'
"""How the page knows it is served (the export rewrites it to ``data-mode="static"``)."""

NEIGHBOURS = 8


def export(run: Any, folder: str | Path, *, limit: int = 200) -> Path:
    """Write the static explorer of ``run`` to ``folder`` (new or empty) and return its path.

    Parameters
    ----------
    run:
        A ``Run`` from ``sl.load_run`` (or any object with its attributes).
    folder:
        Where to write; an existing folder must be empty.
    limit:
        How many samples (the first ones) are exported.

    Example
    -------
    >>> import tempfile
    >>> from saliencelab.explore.synthetic import synthetic_run
    >>> export(synthetic_run(4), tempfile.mkdtemp(), limit=0)
    Traceback (most recent call last):
    ValueError: limit is the number of samples to export and must be at least 1; got 0
    """
    if limit < 1:
        raise ValueError(f"limit is the number of samples to export and must be at least 1; got {limit}")
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValueError(f"{folder} exists and is not an empty folder: export into a new or empty folder")
    data = ExplorerData(run, cache_size=1)
    view = data.view
    samples = list(range(min(limit, view.n)))
    names, methods = list(view.kinds), view.methods
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "tiles").mkdir(exist_ok=True)
    shutil.copytree(STATIC, folder / "static")
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    if LIVE_MARK not in html:
        raise RuntimeError(f"static/index.html lacks {LIVE_MARK}: the page could not tell it is exported")
    (folder / "index.html").write_text(html.replace(LIVE_MARK, 'data-mode="static"'), encoding="utf-8")

    def put(key: str, value: Any) -> None:
        text = json.dumps(jsonable(value), allow_nan=False, separators=(",", ":"))
        (folder / "data" / f"{key}.js").write_text(f"SL.put({json.dumps(key)}, {text});\n", encoding="utf-8")

    def tile(name: str, png: bytes) -> None:
        (folder / "tiles" / f"{name}.png").write_bytes(png)

    put("run", {**data.run_info(), "exported": len(samples)})
    put("distributions", data.distributions())
    for j, name in enumerate(names):
        put(f"agreement-i{j}", data.agreement({"input": name}))
    put("table", {"rows": _rows(data, samples)})
    chosen = set(samples)
    for i in samples:
        put(f"sample-{i}", data.sample(i))
        for j, name in enumerate(names):
            kind = view.kinds[name]
            if kind in ("image", "sequence"):
                tile(f"input-{i}-i{j}", data.input_tile(i, {"input": name}))
            for k, method in enumerate(methods):
                params = {"method": method, "input": name, "count": "100"}
                near = [n for n in data.neighbours(i, params)["neighbours"] if n["index"] in chosen][:NEIGHBOURS]
                put(f"neighbours-{i}-m{k}-i{j}", {"index": i, "method": method, "input": name, "neighbours": near})
                for sign in SIGNS:
                    for clip in CLIPS:
                        controls = {**params, "sign": sign, "clip": clip}
                        if kind == "text":
                            put(f"tokens-{i}-m{k}-i{j}-{sign}-{clip}", data.tokens(i, controls))
                        elif kind in ("image", "sequence"):
                            tile(f"map-{i}-m{k}-i{j}-{sign}-{clip}", data.map_tile(i, controls))
    spray = data.spray()
    put("spray", spray)
    for c, entry in enumerate(spray["classes"]):
        found = data.spray_class(entry["key"])
        found["points"] = [p for p in found["points"] if p["index"] in chosen]
        for cluster in found["clusters"]:
            cluster["prototypes"] = [i for i in cluster["prototypes"] if i in chosen]
        put(f"spray-{c}", found)
        for j, name in enumerate(found["inputs"]):
            for sign in SIGNS:
                for clip in CLIPS:
                    tile(f"spray-{c}-i{j}-{sign}-{clip}", data.spray_tile(entry["key"], {"input": name, "sign": sign,
                                                                                        "clip": clip}))
    return folder


def _rows(data: ExplorerData, samples: list[int]) -> list[dict[str, Any]]:
    """Every exported row with all methods' metrics and completeness verdicts, for filtering in the page."""
    view = data.view
    passes = {m: completeness_passes(view, m) for m in view.methods if f"{m}.completeness_error" in view.table}
    rows = []
    for i in samples:
        record = view.table.iloc[i].to_dict()
        row = grid_row(view, record, view.methods[0])
        row["columns"] = jsonable({k: v for k, v in record.items() if k != "tokens"})
        row["verdicts"] = {m: bool(p.iloc[i]) for m, p in passes.items()}
        rows.append(row)
    return rows
