"""The explorer's JSON API and tiles through Starlette's TestClient, on made-up runs."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.stats import spearmanr

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from saliencelab.explore.app import create_app  # noqa: E402
from saliencelab.explore.similarity import MapIndex, shrink, unit_rows  # noqa: E402
from saliencelab.explore.synthetic import synthetic_run  # noqa: E402
from saliencelab.explore.view import RunView  # noqa: E402

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def run():
    found = synthetic_run(90, seed=3)
    found.table.loc[[4, 9, 30], "gradient.sparseness"] = np.nan  # missing values sort last
    return found


@pytest.fixture(scope="module")
def client(run):
    return TestClient(create_app(run))


def table(client, **params):
    response = client.get("/api/table", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def every_index(client, **params) -> list[int]:
    first = table(client, size=200, **params)
    pages = [table(client, size=200, page=page, **params) for page in range(first["pages"])]
    return [row["index"] for found in pages for row in found["rows"]]


def test_each_filter_keeps_exactly_the_rows_pandas_keeps(client, run):
    frame = run.table
    assert every_index(client, label=2) == frame.index[frame["label"] == 2].tolist()
    assert every_index(client, prediction=0) == frame.index[frame["prediction"] == 0].tolist()
    assert every_index(client, correct="false") == frame.index[~frame["correct"]].tolist()
    inside = frame["occlusion.deletion_auc"].between(0.35, 0.45)
    assert every_index(client, range="occlusion.deletion_auc:0.35:0.45") == frame.index[inside].tolist()
    assert every_index(client, range="score::0.5") == frame.index[frame["score"] <= 0.5].tolist()
    both = (frame["label"] == 1) & frame["correct"] & (frame["score"] >= 0.6)
    assert every_index(client, label=1, correct="true", range="score:0.6:") == frame.index[both].tolist()


def test_degenerate_and_verdict_filters_judge_the_chosen_method(client, run):
    degenerate = synthetic_run(12)
    degenerate.table.loc[[5, 7], "integrated_gradients.degenerate"] = True
    other = TestClient(create_app(degenerate))
    assert every_index(other, method="integrated_gradients", degenerate="true") == [5, 7]
    assert every_index(other, method="gradient", degenerate="true") == []
    assert len(every_index(other, method="integrated_gradients", degenerate="false")) == 10
    passes = every_index(client, method="integrated_gradients", verdict="pass")
    fails = every_index(client, method="integrated_gradients", verdict="fail")
    error, score = run.table["integrated_gradients.completeness_error"], run.table["score"]
    assert passes == run.table.index[error <= 1e-2 * score.abs()].tolist()
    assert sorted(passes + fails) == list(range(run.n)) and passes and fails


def test_sorting_by_a_metric_orders_the_rows_and_puts_missing_values_last(client, run):
    order = every_index(client, sort="gradient.sparseness", order="desc")
    values = run.table.loc[order, "gradient.sparseness"].to_numpy()
    assert np.all(np.diff(values[:-3]) <= 0) and np.isnan(values[-3:]).all()
    assert every_index(client, sort="score") == run.table["score"].sort_values(kind="stable").index.tolist()
    assert every_index(client, order="desc") == list(range(run.n))[::-1]


def test_pages_cover_every_row_once(client, run):
    first = table(client, size=7)
    assert first["pages"] == -(-run.n // 7) and first["total"] == run.n
    seen = [row["index"] for page in range(first["pages"]) for row in table(client, size=7, page=page)["rows"]]
    assert seen == list(range(run.n))
    assert table(client, size=7, page=first["pages"])["rows"] == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sort": "nope"}, "sort: unknown column 'nope'"),
        ({"range": "score:a:1"}, "range: 'a' is not a number"),
        ({"range": "score"}, "range: write COLUMN:LOW:HIGH"),
        ({"degenerate": "true"}, "give method= too"),
        ({"size": "500"}, "size: 500 is outside [1, 200]"),
        ({"correct": "maybe"}, "correct: use true or false"),
        ({"method": "lime"}, "the run has no method 'lime'"),
    ],
)
def test_a_bad_query_is_a_400_that_says_what_to_change(client, params, message):
    response = client.get("/api/table", params=params)
    assert response.status_code == 400 and message in response.json()["error"]


def test_class_names_come_back_as_data_and_the_page_holds_no_run_string(client):
    info = client.get("/api/run").json()
    assert info["classes"][2] == SCRIPT
    assert client.get("/api/run").headers["content-type"] == "application/json"
    row = next(r for r in table(client, label=2, size=1)["rows"])
    assert row["label_name"] == SCRIPT
    page = client.get("/").text
    assert "alert" not in page and "Content-Security-Policy" in page
    script = client.get("/static/app.js").text
    assert ".innerHTML" not in script and "insertAdjacentHTML" not in script and "document.write" not in script


@pytest.mark.parametrize(
    "path",
    [
        "/static/..%2Fapp.py",
        "/static/..%2F..%2Fexplore%2Fapp.py",
        "/static/%2e%2e/app.py",
        "/static/../app.py",
        "/static/..%5Capp.py",
        "/static//etc/passwd",
        "/tile/map/0?input=..%2F..%2Fetc%2Fpasswd",
        "/tile/map/0?method=..%2Fgradient",
        "/api/spray/..%2F..%2Fetc",
        "/tile/spray/..%2F0",
        "/api/sample/-1",
        "/api/sample/90",
    ],
)
def test_nothing_outside_the_run_and_the_static_folder_is_served(client, path):
    response = client.get(path)
    assert response.status_code in (400, 404)
    assert "import" not in response.text and "root:" not in response.text


def test_static_files_are_served(client):
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/").status_code == 200


def pixels(client, **params) -> np.ndarray:
    response = client.get("/tile/map/3", params={"method": "gradient", **params})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert "max-age" in response.headers["cache-control"]
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(int)


def test_each_control_changes_the_tile(client):
    base = pixels(client)
    for change in ({"sign": "absolute"}, {"clip": "percentile"}, {"cmap": "viridis"}, {"opacity": "0.3"},
                   {"percentile": "60"}):  # fmt: skip
        assert not np.array_equal(pixels(client, **change), base), change
    # the default signed colour map draws negative values blue; an absolute map (white to purple) has no blue pixel
    blue = lambda picture: (picture[..., 2] > picture[..., 0] + 20) & (picture[..., 1] > picture[..., 0])  # noqa: E731
    assert blue(base).any() and not blue(pixels(client, sign="absolute")).any()


def test_opacity_mixes_the_map_with_the_grey_input(client, run):
    alone, none = pixels(client, opacity="1"), pixels(client, opacity="0")
    grey = np.round(np.clip(run.inputs["input"][3, 0], 0, 1) * 255)
    assert np.abs(none[..., 0] - grey).max() <= 1 and not np.array_equal(alone, none)


def test_an_unknown_control_value_is_refused(client):
    for params in ({"cmap": "jet"}, {"sign": "both"}, {"opacity": "2"}, {"percentile": "x"}):
        assert client.get("/tile/map/0", params=params).status_code == 400


def test_input_tiles_show_the_image(client, run):
    response = client.get("/tile/input/5")
    image = np.asarray(Image.open(io.BytesIO(response.content)))
    assert image.shape[:2] == run.inputs["input"].shape[2:]


def test_sample_details_give_every_method_with_its_checks(client, run):
    sample = client.get("/api/sample/11").json()
    assert [m["name"] for m in sample["methods"]] == run.methods
    checks = {c["metric"]: c for c in sample["methods"][0]["checks"]}
    assert checks["deletion_auc"]["value"] == pytest.approx(run.table.at[11, "gradient.deletion_auc"])
    assert sample["label_name"] == ["circle", "bar", SCRIPT][run.table.at[11, "label"]]


def test_nearest_samples_are_the_most_correlated_maps(client, run):
    found = client.get("/api/neighbours/8", params={"method": "occlusion", "count": 5}).json()["neighbours"]
    maps = unit_rows(shrink(run.maps["occlusion"]["input"]))
    similarity = maps @ maps[8]
    similarity[8] = -np.inf
    assert [n["index"] for n in found] == np.argsort(-similarity, kind="stable")[:5].tolist()
    full = np.corrcoef(run.maps["occlusion"]["input"].reshape(run.n, -1))[8]  # 8x8 maps are not shrunk
    assert found[0]["similarity"] == pytest.approx(full[found[0]["index"]], abs=1e-5)


def test_the_shrunk_map_cache_stays_bounded():
    index = MapIndex(RunView(synthetic_run(10)), cache_size=2)
    for method in ("gradient", "integrated_gradients", "occlusion", "gradient"):
        index.nearest(0, method, "input", 3)
    assert list(index._cache) == [("occlusion", "input"), ("gradient", "input")]


def test_rank_agreement_is_spearman_between_methods(client, run):
    agreement = client.get("/api/agreement").json()
    found = agreement["metrics"]["insertion_auc"]
    expected = spearmanr(run.table["gradient.insertion_auc"], run.table["occlusion.insertion_auc"])[0]
    assert found["matrix"][0][2] == pytest.approx(expected)
    maps = agreement["maps"]
    first = run.maps["gradient"]["input"].reshape(run.n, -1)
    second = run.maps["occlusion"]["input"].reshape(run.n, -1)
    per_sample = [spearmanr(a, b)[0] for a, b in zip(first, second, strict=True)]
    assert maps["matrix"][0][2] == pytest.approx(np.mean(per_sample), abs=1e-5)


def test_distributions_count_every_value_on_shared_bins(client, run):
    metrics = {m["metric"]: m for m in client.get("/api/distributions").json()["metrics"]}
    found = metrics["sparseness"]
    counts = {m["method"]: m for m in found["methods"]}
    assert sum(counts["gradient"]["counts"]) == run.n - 3 and counts["gradient"]["missing"] == 3
    expected = np.histogram(run.table["occlusion.sparseness"], bins=np.array(found["edges"]))[0]
    assert counts["occlusion"]["counts"] == expected.tolist()


def test_spray_pages_give_clusters_members_and_mean_maps(client, run):
    classes = client.get("/api/spray").json()["classes"]
    assert [c["name"] for c in classes] == ["circle", "bar", SCRIPT]
    found = client.get("/api/spray/2").json()
    members = run.analysis[2]["members"]
    assert sorted(p["index"] for p in found["points"]) == sorted(members.tolist())
    cluster = run.analysis[2]["cluster"]
    assert {c["cluster"]: c["size"] for c in found["clusters"]} == {0: int((cluster == 0).sum()), 1: int(cluster.sum())}
    tile = client.get("/tile/spray/2")
    assert tile.status_code == 200 and tile.content[:4] == b"\x89PNG"
    assert client.get("/api/spray/7").status_code == 404


def test_a_text_run_gives_token_colours_under_the_controls():
    run = synthetic_run(6, text=True, methods=("gradient",))
    client = TestClient(create_app(run))
    found = client.get("/api/tokens/2", params={"method": "gradient"}).json()
    assert found["tokens"] == run.table.at[2, "tokens"]
    assert len(found["colours"]) == len(found["tokens"]) and all(len(c) == 7 for c in found["colours"])
    other = client.get("/api/tokens/2", params={"method": "gradient", "cmap": "viridis"}).json()
    assert other["colours"] != found["colours"] and other["values"] == found["values"]
    assert "text" in table(client)["rows"][0]


def test_pages_read_only_the_samples_they_show():
    run = synthetic_run(40)
    reads: list[object] = []

    class Watched:
        def __init__(self, array):
            self.array, self.shape = array, array.shape

        def __getitem__(self, key):
            reads.append(key)
            return self.array[key]

    run.inputs = {"input": Watched(run.inputs["input"])}
    run.maps = {m: {"input": Watched(arrays["input"])} for m, arrays in run.maps.items()}
    client = TestClient(create_app(run))
    client.get("/api/table")
    client.get("/api/sample/3")
    assert reads == []
    client.get("/tile/map/3", params={"method": "occlusion"})
    assert reads == [3, 3]  # the map and, for the overlay, the input


def test_a_run_without_the_table_columns_is_refused():
    run = synthetic_run(4)
    run.table = run.table.drop(columns=["prediction"])
    with pytest.raises(ValueError, match="lacks the columns prediction"):
        create_app(run)
    run.table = pd.DataFrame(columns=["index", "label", "prediction", "score", "target", "correct"])
    with pytest.raises(ValueError, match="not finished: its table has 0 of its 4 samples"):
        create_app(run)


def test_importing_saliencelab_loads_no_web_server():
    code = "import sys, saliencelab as sl; sl.explore; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "saliencelab" in loaded and "starlette" not in loaded and "uvicorn" not in loaded
