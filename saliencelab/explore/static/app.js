// saliencelab explorer: plain JavaScript, no framework, nothing loaded from elsewhere.
// Every string from the run (class names, tokens, method names, paths) is written with textContent,
// never parsed as HTML. Served pages ask the server (api/..., tile/...); an exported folder
// (html data-mode="static") loads data/<key>.js files and tiles/<name>.png instead.
"use strict";

const STATIC = document.documentElement.dataset.mode === "static";
const SL = { data: {}, waiting: {}, run: null, controls: {}, grid: {} };
window.SL = SL;
const SIGNS = ["signed", "absolute"];
const CLIPS = ["symmetric", "percentile"];
const PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"];

SL.put = (key, value) => {
  SL.data[key] = value;
  (SL.waiting[key] || []).forEach((resolve) => resolve(value));
  delete SL.waiting[key];
};

function loadStatic(key) {
  if (key in SL.data) return Promise.resolve(SL.data[key]);
  return new Promise((resolve, reject) => {
    (SL.waiting[key] = SL.waiting[key] || []).push(resolve);
    const script = document.createElement("script");
    script.src = "data/" + key + ".js";
    script.onerror = () => reject(new Error("not in this export: " + key));
    document.head.appendChild(script);
  });
}

async function api(path, params) {
  const response = await fetch("api/" + path + query(params));
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function query(params) {
  const search = new URLSearchParams();
  Object.entries(params || {}).forEach(([key, value]) => {
    if (Array.isArray(value)) value.forEach((v) => search.append(key, v));
    else if (value !== undefined && value !== null && value !== "") search.append(key, value);
  });
  const text = search.toString();
  return text ? "?" + text : "";
}

// ---- small DOM helpers: text always through textContent ----
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.entries(props || {}).forEach(([key, value]) => {
    if (key === "class") node.className = value;
    else if (key === "on") Object.entries(value).forEach(([event, handler]) => node.addEventListener(event, handler));
    else node.setAttribute(key, value);
  });
  children.flat().forEach((child) => {
    if (child === null || child === undefined) return;
    node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  });
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  Object.entries(attrs || {}).forEach(([key, value]) => node.setAttribute(key, value));
  children.flat().forEach((child) => node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child))));
  return node;
}

function number(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value !== "number") return String(value);
  return Math.abs(value) >= 1e4 || (value !== 0 && Math.abs(value) < 1e-3) ? value.toExponential(2) : value.toFixed(3);
}

function className(index) {
  if (index === null || index === undefined) return "–";
  const classes = SL.run.classes;
  return classes && index >= 0 && index < classes.length ? classes[index] : String(index);
}

// ---- tiles: live URLs carry the controls; exported tiles exist for sign x clip only ----
function inputIndex(name) { return SL.run.inputs.findIndex((i) => i.name === name); }
function methodIndex(name) { return SL.run.methods.indexOf(name); }

function inputTile(index, name) {
  if (STATIC) return "tiles/input-" + index + "-i" + inputIndex(name) + ".png";
  return "tile/input/" + index + query({ input: name });
}

function mapTile(index, method, name) {
  const c = SL.controls;
  if (STATIC) return "tiles/map-" + index + "-m" + methodIndex(method) + "-i" + inputIndex(name) + "-" + c.sign + "-" + c.clip + ".png";
  return "tile/map/" + index + query({ method, input: name, sign: c.sign, clip: c.clip, percentile: c.percentile, cmap: c.cmap, opacity: c.opacity });
}

function sprayTile(position, key, name, inputPosition) {
  const c = SL.controls;
  if (STATIC) return "tiles/spray-" + position + "-i" + inputPosition + "-" + c.sign + "-" + c.clip + ".png";
  return "tile/spray/" + encodeURIComponent(key) + query({ input: name, sign: c.sign, clip: c.clip, percentile: c.percentile, cmap: c.cmap });
}

function tokensOf(index, method, name) {
  const c = SL.controls;
  if (STATIC) return loadStatic("tokens-" + index + "-m" + methodIndex(method) + "-i" + inputIndex(name) + "-" + c.sign + "-" + c.clip);
  return api("tokens/" + index, { method, input: name, sign: c.sign, clip: c.clip, percentile: c.percentile, cmap: c.cmap });
}

function image(src, alt) { return el("img", { src, alt, class: "tile", loading: "lazy" }); }

// ---- the grid: filters and sorting (on the server, or on the exported rows) ----
const FILTERS = ["label", "prediction", "correct", "method", "degenerate", "verdict", "range", "sort", "order", "page"];

function readHashQuery() {
  const text = location.hash.split("?")[1] || "";
  const search = new URLSearchParams(text);
  const found = {};
  FILTERS.forEach((key) => {
    const values = search.getAll(key);
    if (values.length) found[key] = key === "range" ? values : values[0];
  });
  return found;
}

function staticSelect(params) {
  const method = params.method || SL.run.methods[0];
  let rows = SL.data.table.rows.filter((row) => {
    const c = row.columns;
    if (params.label !== undefined && String(c.label) !== params.label) return false;
    if (params.prediction !== undefined && String(c.prediction) !== params.prediction) return false;
    if (params.correct !== undefined && String(c.correct) !== params.correct) return false;
    if (params.degenerate !== undefined && String(Boolean(c[method + ".degenerate"])) !== params.degenerate) return false;
    if (params.verdict !== undefined && (row.verdicts[method] ? "pass" : "fail") !== params.verdict) return false;
    return (params.range || []).every((text) => {
      const [column, low, high] = splitRange(text);
      const value = c[column];
      if (value === null || value === undefined || typeof value === "string") return false;
      return (low === "" || value >= Number(low)) && (high === "" || value <= Number(high));
    });
  });
  const sort = params.sort || "index";
  const sign = params.order === "desc" ? -1 : 1;
  rows = rows.map((row, position) => [row, position]).sort(([a, i], [b, j]) => {
    const x = a.columns[sort], y = b.columns[sort];
    const missingX = x === null || x === undefined, missingY = y === null || y === undefined;
    if (missingX || missingY) return missingX === missingY ? i - j : (missingX ? 1 : -1);
    return x < y ? -sign : x > y ? sign : i - j;
  }).map(([row]) => row);
  const size = 50, page = Number(params.page || 0);
  const prefix = method + ".";
  const shown = rows.slice(page * size, (page + 1) * size).map((row) => {
    const metrics = {};
    Object.entries(row.columns).forEach(([key, value]) => { if (key.startsWith(prefix)) metrics[key.slice(prefix.length)] = value; });
    return Object.assign({}, row, { metrics });
  });
  return { total: rows.length, page, pages: Math.max(1, Math.ceil(rows.length / size)), method, rows: shown };
}

function splitRange(text) {
  const parts = text.split(":");
  const high = parts.pop(), low = parts.pop();
  return [parts.join(":"), low, high];
}

async function fetchTable(params) {
  if (!STATIC) return api("table", params);
  await loadStatic("table");
  return staticSelect(params);
}

function optionList(select, values, current) {
  values.forEach(([value, text]) => {
    const option = el("option", { value }, text);
    if (String(value) === String(current ?? "")) option.selected = true;
    select.appendChild(option);
  });
  return select;
}

function go(params) {
  location.hash = "#/" + query(params);
}

async function showGrid(main) {
  const params = readHashQuery();
  const classes = (SL.run.classes || []).map((name, i) => [String(i), name]);
  const change = (key) => (event) => {
    const next = Object.assign({}, params, { [key]: event.target.value, page: undefined });
    if (!event.target.value) delete next[key];
    go(next);
  };
  const filters = el("div", { class: "filters", id: "filters" },
    el("label", {}, "class ", optionList(el("select", { id: "filter-label", on: { change: change("label") } }), [["", "any"], ...classes], params.label)),
    el("label", {}, "prediction ", optionList(el("select", { id: "filter-prediction", on: { change: change("prediction") } }), [["", "any"], ...classes], params.prediction)),
    el("label", {}, "correct ", optionList(el("select", { id: "filter-correct", on: { change: change("correct") } }), [["", "any"], ["true", "right"], ["false", "wrong"]], params.correct)),
    el("label", {}, "method ", optionList(el("select", { id: "filter-method", on: { change: change("method") } }), SL.run.methods.map((m) => [m, m]), params.method)),
    el("label", {}, "degenerate ", optionList(el("select", { id: "filter-degenerate", on: { change: change("degenerate") } }), [["", "any"], ["true", "yes"], ["false", "no"]], params.degenerate)),
    el("label", {}, "completeness ", optionList(el("select", { id: "filter-verdict", on: { change: change("verdict") } }), [["", "any"], ["pass", "pass"], ["fail", "fail"]], params.verdict)),
  );
  const [rangeColumn, rangeLow, rangeHigh] = params.range ? splitRange([].concat(params.range)[0]) : ["", "", ""];
  const columnSelect = optionList(el("select", { id: "range-column" }), [["", "metric…"], ...SL.run.columns.map((c) => [c, c])], rangeColumn);
  const low = el("input", { id: "range-low", type: "number", step: "any", placeholder: "from", value: rangeLow });
  const high = el("input", { id: "range-high", type: "number", step: "any", placeholder: "to", value: rangeHigh });
  const applyRange = () => {
    const next = Object.assign({}, params, { page: undefined });
    if (columnSelect.value) next.range = [columnSelect.value + ":" + low.value + ":" + high.value];
    else delete next.range;
    go(next);
  };
  filters.appendChild(el("label", {}, "range ", columnSelect, low, high, el("button", { id: "range-apply", on: { click: applyRange } }, "apply")));
  filters.appendChild(el("label", {}, "sort ", optionList(el("select", { id: "sort", on: { change: change("sort") } }), SL.run.columns.map((c) => [c, c]), params.sort || "index")));
  filters.appendChild(el("label", {}, "order ", optionList(el("select", { id: "order", on: { change: change("order") } }), [["asc", "ascending"], ["desc", "descending"]], params.order || "asc")));
  if (params.degenerate || params.verdict) { if (!params.method) params.method = SL.run.methods[0]; }
  const page = await fetchTable(params);
  const grid = el("div", { class: "grid", id: "grid" });
  const input = SL.run.inputs[0];
  page.rows.forEach((row) => {
    const sortValue = params.sort && params.sort !== "index" ? (params.sort.startsWith(page.method + ".") ? row.metrics[params.sort.slice(page.method.length + 1)] : row[params.sort]) : null;
    const picture = input.kind === "text" ? el("div", { class: "text" }, row.text || "") : image(mapTile(row.index, page.method, input.name), "map of sample " + row.index);
    grid.appendChild(el("a", { class: "card" + (row.correct === false ? " wrong" : ""), href: "#/sample/" + row.index, "data-index": String(row.index) },
      picture,
      el("div", { class: "caption" }, "#" + row.index + " ", el("span", { class: "label-name" }, row.label_name ?? "–"), " → ", el("span", {}, row.prediction_name ?? "–")),
      sortValue !== null && sortValue !== undefined ? el("div", { class: "caption sort-value" }, params.sort + " = " + number(sortValue)) : null));
  });
  const pager = el("div", { class: "pager" },
    el("button", { id: "page-previous", on: { click: () => go(Object.assign({}, params, { page: page.page - 1 })) } }, "previous"),
    el("span", { id: "total" }, page.total + " samples, page " + (page.page + 1) + " of " + page.pages),
    el("button", { id: "page-next", on: { click: () => go(Object.assign({}, params, { page: page.page + 1 })) } }, "next"));
  pager.children[0].disabled = page.page <= 0;
  pager.children[2].disabled = page.page + 1 >= page.pages;
  main.replaceChildren(filters, pager, grid);
}

// ---- one sample: input, every method's map, checks, neighbours ----
async function showSample(main, index) {
  const sample = STATIC ? await loadStatic("sample-" + index) : await api("sample/" + index);
  const input = SL.run.inputs[0];
  const head = el("div", { class: "panel", id: "sample-head" },
    el("h2", {}, "Sample " + index),
    el("p", {}, "label: ", el("span", { id: "sample-label" }, sample.label_name ?? "–"),
      ", prediction: ", el("span", { id: "sample-prediction" }, sample.prediction_name ?? "–"),
      ", target: ", el("span", {}, sample.target_name ?? "–"),
      ", score: " + number(sample.row.score) + (sample.row.correct === false ? " (wrong)" : "")));
  const maps = el("div", { class: "maps", id: "maps" });
  if (input.kind === "image" || input.kind === "sequence") {
    maps.appendChild(el("div", { class: "panel", id: "input-panel" }, el("h3", {}, "input"), image(inputTile(index, input.name), "input of sample " + index)));
  }
  for (const method of sample.methods) {
    const panel = el("div", { class: "panel method-panel", "data-method": method.name }, el("h3", {}, method.name));
    if (input.kind === "text") {
      const tokens = await tokensOf(index, method.name, input.name);
      panel.appendChild(el("div", { class: "tokens" }, tokens.tokens.map((word, i) => {
        const span = el("span", { class: "token", title: number(tokens.values[i]) }, word);
        if (/^#[0-9a-f]{6}$/.test(tokens.colours[i])) span.style.backgroundColor = tokens.colours[i];
        return span;
      })));
    } else if (input.kind === "image" || input.kind === "sequence") {
      panel.appendChild(image(mapTile(index, method.name, input.name), method.name + " map of sample " + index));
    }
    panel.appendChild(el("table", { class: "checks" }, el("tr", {}, el("th", {}, "check"), el("th", {}, "value"), el("th", {}, "verdict")),
      method.checks.map((check) => el("tr", {}, el("td", {}, check.metric), el("td", {}, number(check.value)),
        el("td", { class: check.verdict || "" }, check.verdict || "")))));
    maps.appendChild(panel);
  }
  const chooser = optionList(el("select", { id: "neighbour-method" }), SL.run.methods.map((m) => [m, m]), SL.run.methods[0]);
  const list = el("div", { class: "neighbours", id: "neighbours" });
  const fill = async () => {
    const method = chooser.value;
    const found = STATIC ? await loadStatic("neighbours-" + index + "-m" + methodIndex(method) + "-i0") : await api("neighbours/" + index, { method, input: input.name });
    list.replaceChildren(...found.neighbours.map((n) => el("a", { class: "card", href: "#/sample/" + n.index, "data-index": String(n.index) },
      input.kind === "text" ? null : image(mapTile(n.index, method, input.name), "map of sample " + n.index),
      el("div", { class: "caption" }, "#" + n.index + " ", n.label_name ?? "–", " (r = " + number(n.similarity) + ")"))));
  };
  chooser.addEventListener("change", fill);
  await fill();
  main.replaceChildren(head, maps, el("div", { class: "panel" }, el("h3", {}, "Nearest samples by map similarity ", chooser), list));
}

// ---- methods: metric distributions and rank agreement ----
function histogram(edges, counts, colour) {
  const width = 240, height = 90, most = Math.max(1, ...counts);
  const bar = width / counts.length;
  return svg("svg", { width, height: height + 16, viewBox: "0 0 " + width + " " + (height + 16), class: "histogram" },
    counts.map((count, i) => svg("rect", { x: i * bar, y: height - (count / most) * height, width: Math.max(bar - 1, 1), height: (count / most) * height, fill: colour })),
    svg("text", { x: 0, y: height + 13, "font-size": 10 }, number(edges[0])),
    svg("text", { x: width, y: height + 13, "font-size": 10, "text-anchor": "end" }, number(edges[edges.length - 1])));
}

function matrix(methods, values) {
  return el("table", { class: "matrix" }, el("tr", {}, el("th", {}, ""), methods.map((m) => el("th", {}, m))),
    methods.map((a, i) => el("tr", {}, el("th", {}, a), methods.map((b, j) => {
      const value = values[i][j];
      const cell = el("td", {}, number(value));
      if (value !== null) cell.style.backgroundColor = "rgba(33, 102, 172, " + Math.abs(value).toFixed(2) + ")";
      return cell;
    }))));
}

async function showMethods(main) {
  const input = SL.run.inputs[0];
  const [distributions, agreement] = STATIC
    ? await Promise.all([loadStatic("distributions"), loadStatic("agreement-i0")])
    : await Promise.all([api("distributions"), api("agreement", { input: input.name })]);
  const parts = [el("h2", {}, "Metric distributions per method")];
  distributions.metrics.forEach((metric) => {
    parts.push(el("div", { class: "panel metric", "data-metric": metric.metric }, el("h3", {}, metric.metric),
      el("div", { class: "maps" }, metric.methods.map((m, k) => el("div", {}, el("div", { class: "caption" }, m.method + ": mean " + number(m.mean) + ", median " + number(m.median) + ", " + m.missing + " missing"),
        histogram(metric.edges, m.counts, PALETTE[k % PALETTE.length]))))));
  });
  parts.push(el("h2", {}, "Rank agreement between methods"));
  parts.push(el("div", { class: "panel", id: "map-agreement" }, el("h3", {}, "maps (mean per-sample Spearman over " + agreement.maps.samples + " samples)"), matrix(agreement.maps.methods, agreement.maps.matrix)));
  Object.entries(agreement.metrics).forEach(([metric, found]) => {
    parts.push(el("div", { class: "panel" }, el("h3", {}, metric + " (Spearman across samples)"), matrix(found.methods, found.matrix)));
  });
  main.replaceChildren(...parts);
}

// ---- SpRAy: classes, clusters, prototypes and members ----
async function showSpray(main, key) {
  const spray = STATIC ? await loadStatic("spray") : await api("spray");
  if (!spray.classes.length) { main.replaceChildren(el("p", {}, "This run has no SpRAy analysis.")); return; }
  const list = el("div", { id: "spray-classes", class: "filters" }, "classes: ", spray.classes.map((c) => el("a", { href: "#/spray/" + encodeURIComponent(c.key), "data-key": c.key }, c.name + " (" + c.members + ")")));
  if (key === undefined) { main.replaceChildren(list); return; }
  const position = spray.classes.findIndex((c) => c.key === key);
  const found = STATIC ? await loadStatic("spray-" + position) : await api("spray/" + encodeURIComponent(key));
  const input = SL.run.inputs[0];
  const xs = found.points.map((p) => p.x), ys = found.points.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const scale = (v, a, b, size) => 10 + ((v - a) / ((b - a) || 1)) * (size - 20);
  const members = el("div", { class: "grid", id: "members" });
  const showMembers = (cluster) => {
    const chosen = found.points.filter((p) => p.cluster === cluster).sort((a, b) => b.outlier - a.outlier);
    members.replaceChildren(...chosen.slice(0, 60).map((p) => el("a", { class: "card", href: "#/sample/" + p.index, "data-index": String(p.index) },
      input.kind === "text" ? null : image(mapTile(p.index, found.method || SL.run.methods[0], input.name), "map of sample " + p.index),
      el("div", { class: "caption" }, "#" + p.index + " outlier " + number(p.outlier)))));
  };
  const plot = svg("svg", { width: 320, height: 240, id: "embedding" }, found.points.map((p) => {
    const dot = svg("circle", { cx: scale(p.x, x0, x1, 320), cy: scale(p.y, y0, y1, 240), r: 3, fill: PALETTE[p.cluster % PALETTE.length], class: "cluster" }, svg("title", {}, "#" + p.index));
    dot.addEventListener("click", () => { location.hash = "#/sample/" + p.index; });
    return dot;
  }));
  const clusters = el("div", { class: "maps", id: "clusters" }, found.clusters.map((c) => el("div", { class: "panel cluster", "data-cluster": String(c.cluster), on: { click: () => showMembers(c.cluster) } },
    el("h3", {}, "cluster " + c.cluster + " (" + c.size + ")"),
    el("div", { class: "neighbours" }, c.prototypes.map((i) => el("a", { class: "card", href: "#/sample/" + i }, input.kind === "text" ? null : image(mapTile(i, found.method || SL.run.methods[0], input.name), "prototype " + i), el("div", { class: "caption" }, "#" + i)))))));
  const inputPosition = Math.max(0, found.inputs.indexOf(input.name));
  const head = el("div", { class: "panel" }, el("h2", {}, "SpRAy: ", el("span", { id: "spray-name" }, found.name)),
    el("p", {}, "method " + (found.method ?? "–") + ", " + found.n_clusters + " clusters, eigengap " + number(found.eigengap)),
    found.inputs.length && input.kind !== "text" ? el("div", {}, el("div", { class: "caption" }, "mean map"), el("img", { class: "tile mean-map", id: "mean-map", src: sprayTile(position, key, found.inputs[inputPosition], inputPosition), alt: "mean map" })) : null,
    plot);
  main.replaceChildren(list, head, clusters, el("h3", {}, "members (click a cluster)"), members);
  showMembers(found.clusters[0].cluster);
}

// ---- routing and shared controls ----
async function route() {
  const main = document.getElementById("main");
  const path = location.hash.replace(/^#/, "").split("?")[0] || "/";
  document.querySelectorAll("header nav a").forEach((a) => a.classList.remove("active"));
  try {
    let match;
    if ((match = path.match(/^\/sample\/(\d+)$/))) await showSample(main, Number(match[1]));
    else if (path === "/methods") { document.getElementById("nav-methods").classList.add("active"); await showMethods(main); }
    else if ((match = path.match(/^\/spray(?:\/(.+))?$/))) { document.getElementById("nav-spray").classList.add("active"); await showSpray(main, match[1] === undefined ? undefined : decodeURIComponent(match[1])); }
    else { document.getElementById("nav-samples").classList.add("active"); await showGrid(main); }
  } catch (error) {
    main.replaceChildren(el("p", { class: "error" }, String(error.message || error)));
  }
  document.body.dataset.ready = location.hash;
}

function readControls() {
  SL.controls = {
    sign: document.getElementById("control-sign").value,
    clip: document.getElementById("control-clip").value,
    percentile: document.getElementById("control-percentile").value,
    cmap: document.getElementById("control-cmap").value,
    opacity: document.getElementById("control-opacity").value,
  };
}

function redrawTiles() {
  readControls();
  document.querySelectorAll("img.tile").forEach((img) => {
    const url = img.getAttribute("src");
    if (STATIC) img.setAttribute("src", url.replace(/-(signed|absolute)-(symmetric|percentile)\.png$/, "-" + SL.controls.sign + "-" + SL.controls.clip + ".png"));
    else if (url.startsWith("tile/map/") || url.startsWith("tile/spray/")) {
      const [base, search] = url.split("?");
      const params = new URLSearchParams(search);
      ["sign", "clip", "percentile", "cmap", "opacity"].forEach((key) => { if (key !== "opacity" || base.startsWith("tile/map/")) params.set(key, SL.controls[key]); });
      img.setAttribute("src", base + "?" + params.toString());
    }
  });
  if (SL.run.inputs[0].kind === "text" && location.hash.startsWith("#/sample/")) route();
}

async function start() {
  SL.run = STATIC ? await loadStatic("run") : await api("run");
  document.getElementById("run-name").textContent = SL.run.path + " — " + SL.run.n + " samples" + (STATIC ? " (" + SL.run.exported + " exported)" : "");
  const cmap = document.getElementById("control-cmap");
  SL.run.colour_maps.filter((name) => name !== "default").forEach((name) => cmap.appendChild(el("option", { value: name }, name)));
  if (STATIC) {
    ["control-cmap", "control-percentile", "control-opacity"].forEach((id) => { document.getElementById(id).disabled = true; });
    document.getElementById("static-note").hidden = false;
  }
  if (!SL.run.analysis) document.getElementById("nav-spray").hidden = true;
  readControls();
  document.querySelectorAll("#controls select, #controls input").forEach((control) => control.addEventListener("change", redrawTiles));
  window.addEventListener("hashchange", route);
  await route();
}

start().catch((error) => {
  document.getElementById("main").replaceChildren(el("p", { class: "error" }, "The explorer could not start: " + String(error.message || error)));
});
