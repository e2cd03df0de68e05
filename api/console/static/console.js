// The actorlog console: every entity is a log; list them, read one, rewind it, watch it, fork
// it. Plain JS modules over the service's own APIs (the operator's log API and catalog, and
// the families' routes); the operator token is asked once and kept for this tab only.

const $ = (sel) => document.querySelector(sel);
const TOKEN_KEY = "actorlog-operator-token";
const PAGE = 50, EVENTS_PAGE = 200;
let token = sessionStorage.getItem(TOKEN_KEY);
const view = { kind: null, q: "", offset: 0, total: 0, entity: null };

function showError(err) {
  $("#error").textContent = err ? String(err.message || err) : "";
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}), Authorization: `Bearer ${token}` };
  if (options.body && typeof options.body !== "string") {
    headers["Content-Type"] = "application/json";
    options = { ...options, body: JSON.stringify(options.body) };
  }
  const res = await fetch(path, { ...options, headers });
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!res.ok) {
    const detail = body && (body.detail || body.message) ? (body.detail || body.message) : text;
    const err = new Error(`${res.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    err.status = res.status;
    throw err;
  }
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

const when = (t) => t ? new Date(t * 1000).toLocaleString() : "";

// ------------------------------------------------------------------ sign in

async function signIn(candidate) {
  token = candidate;
  try {
    await api("/v1/runtime");
  } catch (err) {
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    throw err.status === 401 || err.status === 403
      ? new Error("that token is not the operator token") : err;
  }
  sessionStorage.setItem(TOKEN_KEY, candidate);
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#topnav").hidden = false;
  await loadKinds();
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("#login-error").textContent = "";
  try { await signIn($("#token").value.trim()); }
  catch (err) { $("#login-error").textContent = err.message; }
});

$("#signout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
});

// ------------------------------------------------------------------ lists

async function loadKinds() {
  const catalog = await api("/v1/catalog");
  const box = $("#kinds");
  box.replaceChildren(el("h3", { text: "Kinds" }));
  for (const { kind, count } of catalog.kinds) {
    const b = el("button", { "data-kind": kind, onclick: () => openKind(kind) },
      el("span", { text: kind }), el("span", { class: "muted", text: String(count) }));
    if (kind === view.kind) b.classList.add("on");
    box.append(b);
  }
  if (!view.kind && catalog.kinds.length) await openKind(catalog.kinds[0].kind);
}

async function openKind(kind) {
  view.kind = kind; view.offset = 0; view.q = $("#q").value = "";
  document.querySelectorAll("#kinds button").forEach(
    (b) => b.classList.toggle("on", b.dataset.kind === kind));
  await loadRows();
}

async function loadRows() {
  const params = new URLSearchParams({ offset: view.offset, limit: PAGE });
  if (view.q) params.set("q", view.q);
  const page = await api(`/v1/catalog/${encodeURIComponent(view.kind)}?${params}`);
  view.total = page.total;
  const body = $("#rows tbody");
  body.replaceChildren(...page.entities.map((e) => el("tr",
    { "data-id": e.id, onclick: () => openEntity(view.kind, e.id).catch(showError) },
    el("td", { text: e.id }), el("td", { text: e.tag || "" }),
    el("td", { text: String(e.last_version) }), el("td", { text: when(e.updated_at) }))));
  $("#page").textContent = page.total
    ? `${view.offset + 1}-${view.offset + page.entities.length} of ${page.total}` : "none";
  $("#prev").disabled = view.offset === 0;
  $("#next").disabled = view.offset + PAGE >= page.total;
}

$("#prev").addEventListener("click", () => { view.offset = Math.max(0, view.offset - PAGE); loadRows().catch(showError); });
$("#next").addEventListener("click", () => { view.offset += PAGE; loadRows().catch(showError); });
$("#search").addEventListener("submit", (e) => {
  e.preventDefault(); view.q = $("#q").value.trim(); view.offset = 0; loadRows().catch(showError);
});

// ------------------------------------------------------------------ one entity

class EntityView {
  constructor(kind, id) {
    this.kind = kind; this.id = id;
    this.events = []; this.last = 0; this.shown = 0; this.previous = null;
    this.paused = false; this.socket = null; this.following = true;
  }

  base() { return `/v1/actors/${encodeURIComponent(this.kind)}/${encodeURIComponent(this.id)}`; }

  async open() {
    $("#app").classList.add("open");
    $("#entity").hidden = false;
    $("#entity-title").textContent = `${this.kind} ${this.id}`;
    $("#events").replaceChildren();
    $("#family-view").replaceChildren();
    $("#fork").hidden = !["sotopia_episode", "sotopia_batch", "thread", "chat", "counter"]
      .includes(this.kind);
    $("#stop-entity").hidden = !["sotopia_episode", "sotopia_batch"].includes(this.kind);
    await this.moreEvents(1);
    this.tail();
  }

  async moreEvents(from) {
    const page = await api(`${this.base()}/events?from=${from}&limit=${EVENTS_PAGE}`);
    this.last = Math.max(this.last, page.last_version);
    for (const e of page.events) this.addEvent(e);
    $("#more-events").hidden = page.next_from == null;
    $("#more-events").onclick = () => this.moreEvents(page.next_from).catch(showError);
    await this.show(this.following ? this.last : this.shown);
  }

  addEvent(e) {
    if (this.events[e.seq - 1]) return;
    this.events[e.seq - 1] = e;
    this.last = Math.max(this.last, e.seq);
    const data = el("pre", { hidden: "" });
    data.textContent = JSON.stringify({ data: e.data, metadata: e.metadata }, null, 2);
    const item = el("li", { value: String(e.seq), "data-seq": String(e.seq) },
      el("span", { text: `${e.type} ` }), el("span", { class: "muted", text: when(e.timestamp) }),
      data);
    item.addEventListener("click", () => { data.hidden = !data.hidden; });
    $("#events").append(item);
  }

  tail() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}${this.base()}/tail?from=${this.last + 1}` +
      `&token=${encodeURIComponent(token)}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    $("#live-state").textContent = "live";
    socket.onmessage = (msg) => {
      const frame = JSON.parse(msg.data);
      if (frame.type !== "event" || this.paused) return;
      this.addEvent(frame.event);
      if (this.following) this.show(this.last).catch(showError);
      else this.bounds();
    };
    // A tail the service closed (it closes one whose frames wait unread too long, and a
    // restart closes all) is opened again from the next version: the view stays live.
    socket.onclose = () => {
      if (this.socket !== socket) return;  // closed by us: another entity is open
      $("#live-state").textContent = "reconnecting";
      setTimeout(() => { if (this.socket === socket) this.tail(); }, 1000);
    };
  }

  close() {
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close();
  }

  bounds() {
    const slider = $("#slider");
    slider.max = String(this.last);
    slider.value = String(this.shown);
    $("#version-label").textContent = `${this.shown} of ${this.last}`;
  }

  // The version asked for last: key presses and slider moves add up at once, and an answer
  // that a later move overtook is dropped rather than shown.
  step(delta) { return this.show((this.target ?? this.shown) + delta); }

  async show(version) {
    version = Math.max(0, Math.min(version, this.last));
    this.target = version;
    this.following = version === this.last;
    const found = version === 0 ? { state: null }
      : await api(`${this.base()}/state?version=${version}`);
    if (this.target !== version) return;
    const prior = this.shown === version ? this.previous : this.state;
    this.shown = version; this.state = found.state; this.previous = prior;
    this.bounds();
    document.querySelectorAll("#events li").forEach(
      (li) => li.classList.toggle("future", Number(li.dataset.seq) > version));
    $("#state-note").textContent = this.following ? "(now)" : `(as it was at version ${version})`;
    renderState(found.state, prior);
    renderFamily(this.kind, this.id, found.state, version);
  }
}

function renderState(state, prior) {
  const pre = $("#state");
  pre.replaceChildren();
  if (state == null) { pre.textContent = "(nothing yet)"; return; }
  const before = prior && typeof prior === "object" ? prior : {};
  for (const [key, value] of Object.entries(state)) {
    const text = `${JSON.stringify(key)}: ${JSON.stringify(value, null, 2)}\n`;
    const changed = JSON.stringify(before[key]) !== JSON.stringify(value);
    pre.append(el("span", { class: changed && prior ? "changed" : "", text }));
  }
}

let current = null;

async function openEntity(kind, id) {
  if (current) current.close();
  current = new EntityView(kind, id);
  $("#pause").textContent = "Pause";
  await current.open();
}

$("#slider").addEventListener("input", (e) => current && current.show(Number(e.target.value)).catch(showError));
$("#back").addEventListener("click", () => current && current.step(-1).catch(showError));
$("#forward").addEventListener("click", () => current && current.step(1).catch(showError));
$("#latest").addEventListener("click", () => current && current.show(current.last).catch(showError));
$("#pause").addEventListener("click", () => {
  if (!current) return;
  current.paused = !current.paused;
  $("#pause").textContent = current.paused ? "Resume" : "Pause";
  $("#live-state").textContent = current.paused ? "paused" : "live";
  if (!current.paused) current.moreEvents(current.last + 1).catch(showError);
});
document.addEventListener("keydown", (e) => {
  if (!current || ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName)) return;
  if (e.key === "ArrowLeft") current.step(-1).catch(showError);
  if (e.key === "ArrowRight") current.step(1).catch(showError);
});

// ------------------------------------------------------------------ family views

function renderFamily(kind, id, state, version) {
  const box = $("#family-view");
  box.replaceChildren();
  if (!state) return;
  if (kind === "sotopia_episode" && state.setup) box.append(...episodeView(state));
  else if (kind === "sotopia_batch" && state.plan) box.append(batchView(id, state));
  else if (kind === "thread" && Array.isArray(state.messages)) box.append(threadView(state));
  else if (kind === "chat" && Array.isArray(state.records)) {
    box.append(threadView({ messages: state.records.map((r) => r.task !== undefined
      ? { type: "user", content: r.task } : { type: r.step_type || "step", content: r.message || "" }) }));
  } else if (kind === "avatar_session" && state.segments) box.append(segmentsView(state));
}

function episodeView(state) {
  const names = state.setup.agents.map((a) => `${a.first_name || ""} ${a.last_name || ""}`.trim());
  const talk = el("div", { class: "conversation" },
    el("h3", { text: `${state.setup.scenario.codename || "episode"}: ${state.status}` }));
  state.steps.forEach((actions, turn) => actions.forEach((a, who) => {
    if (a.action_type === "none") return;
    talk.append(el("div", { class: "turn" }, el("b", { text: `${turn + 1}. ${names[who]} ` }),
      el("span", { class: "muted", text: `(${a.action_type}) ` }), el("span", { text: a.argument })));
  }));
  const parts = [talk];
  if (state.rewards) parts.push(scoresChart(names, state.rewards));
  return parts;
}

function scoresChart(names, rewards) {
  const dims = Object.keys(rewards[0][1] || {}).filter((d) => d !== "overall_score");
  const width = 560, row = 18, height = (dims.length + 1) * row * names.length + 20;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "SOTOPIA-Eval scores");
  svg.classList.add("scores");
  let y = 14;
  names.forEach((name, i) => {
    const [overall, byDim] = rewards[i];
    for (const dim of ["overall_score", ...dims]) {
      const value = dim === "overall_score" ? overall : byDim[dim];
      const scaled = dim === "secret" || dim === "relationship" ? (value + 10) / 20
        : dim === "social_rules" ? (value + 10) / 10 : dim === "overall_score" ? value / 10 : value / 10;
      const text = document.createElementNS(svg.namespaceURI, "text");
      text.setAttribute("x", "0"); text.setAttribute("y", String(y));
      text.textContent = `${name} ${dim}: ${Number(value).toFixed(2)}`;
      const bar = document.createElementNS(svg.namespaceURI, "rect");
      bar.setAttribute("x", "330"); bar.setAttribute("y", String(y - 11));
      bar.setAttribute("height", "12"); bar.setAttribute("class", "bar");
      bar.setAttribute("width", String(Math.max(0, Math.min(1, scaled)) * 220));
      svg.append(text, bar);
      y += row;
    }
    y += 6;
  });
  return svg;
}

// A batch's results are read at most every 3 s while it runs (each episode_done event would
// otherwise ask for all its rows again), and once more when its status changes.
const results = { key: null, at: 0, body: null };

function batchResults(id, status) {
  const key = `${id}|${status}`;
  if (results.body && results.key === key && Date.now() - results.at < 3000) {
    return Promise.resolve(results.body);
  }
  results.key = key; results.at = Date.now();
  return fetch(`/v1/batches/${encodeURIComponent(id)}/results`).then((r) => r.json())
    .then((body) => { results.body = body; return body; });
}

function batchView(id, state) {
  const total = state.plan.episodes.length;
  const done = Object.keys(state.done || {}).length;
  const origin = state.plan.forked_from;
  const box = el("div", {}, el("h3", { text: `batch ${state.status}: ${done} of ${total} episodes` }),
    el("progress", { max: String(total), value: String(done) }));
  if (origin) {
    box.append(el("p", { class: "muted", text: `forks of batch ${origin.batch} after turn ` +
      `${origin.turn}, agent ${origin.agent} played by ${origin.model}` }));
  }
  const table = el("div", { text: "results loading..." });
  box.append(table);
  batchResults(id, state.status).then((res) => {
    const rows = res.summary || [];
    const dims = rows.length ? Object.keys(rows[0]).filter((k) => typeof rows[0][k] === "object" && rows[0][k]) : [];
    const t = el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "model" }),
      el("th", { text: "episodes" }), ...dims.map((d) => el("th", { text: d })))));
    const body = el("tbody");
    for (const r of rows) {
      body.append(el("tr", {}, el("td", { text: r.model }), el("td", { text: String(r.episodes) }),
        ...dims.map((d) => el("td", { text: r[d] ? `${r[d].mean.toFixed(2)} ± ${r[d].ci95 == null ? "-" : r[d].ci95.toFixed(2)}` : "" }))));
    }
    t.append(body);
    table.replaceChildren(t, histograms(res.rows || [], dims));
    if (res.paired) {
      const p = el("table", { class: "paired" }, el("thead", {}, el("tr", {},
        el("th", { text: "dimension" }), el("th", { text: "fork - source" }), el("th", { text: "95% CI" }),
        el("th", { text: "n" }))));
      const rows = el("tbody");
      for (const d of res.paired) {
        rows.append(el("tr", {}, el("td", { text: d.dimension }), el("td", { text: d.mean.toFixed(2) }),
          el("td", { text: d.ci95 == null ? "-" : `± ${d.ci95.toFixed(2)}` }), el("td", { text: String(d.n) })));
      }
      p.append(rows);
      table.append(el("h4", { text: "paired difference (each fork against its source)" }), p);
    }
  }).catch((err) => { table.textContent = `results: ${err}`; });
  return box;
}

function histograms(rows, dims) {
  const box = el("div", { class: "histograms" });
  for (const dim of dims) {
    const values = rows.flatMap((r) => [r[`agent_1_${dim}`], r[`agent_2_${dim}`]]).filter((v) => v != null);
    if (!values.length) continue;
    const lo = Math.min(...values), hi = Math.max(...values), bins = 10;
    const counts = new Array(bins).fill(0);
    for (const v of values) counts[Math.min(bins - 1, Math.floor(((v - lo) / ((hi - lo) || 1)) * bins))] += 1;
    const top = Math.max(...counts);
    box.append(el("div", {}, el("span", { class: "muted", text: `${dim} ` }),
      ...counts.map((c) => el("span", { class: "badge", title: String(c), text: "▁▂▃▄▅▆▇█"[Math.round((c / top) * 7)] }))));
  }
  return box;
}

function threadView(state) {
  const box = el("div", { class: "conversation" }, el("h3", { text: "messages" }));
  for (const m of state.messages) {
    const who = m.type || m.role || "message";
    const text = typeof m.content === "string" ? m.content : JSON.stringify(m.content);
    box.append(el("div", { class: "turn" }, el("b", { text: `${who} ` }), el("span", { text })));
  }
  return box;
}

function segmentsView(state) {
  const segments = Object.values(state.segments || {});
  const box = el("div", {}, el("h3", { text: `${segments.length} voice segments` }));
  const width = 560, height = 24 * Math.max(1, segments.length);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const end = Math.max(1, ...segments.map((s) => (s.ended_at || s.started_at || 0)));
  const start = Math.min(...segments.map((s) => s.started_at || end));
  segments.forEach((s, i) => {
    const r = document.createElementNS(svg.namespaceURI, "rect");
    const a = ((s.started_at || start) - start) / ((end - start) || 1);
    const b = ((s.ended_at || end) - start) / ((end - start) || 1);
    r.setAttribute("x", String(a * width)); r.setAttribute("y", String(i * 24 + 4));
    r.setAttribute("width", String(Math.max(2, (b - a) * width))); r.setAttribute("height", "16");
    r.setAttribute("class", "bar");
    svg.append(r);
  });
  box.append(svg);
  // each kept segment's lip-sync track (the mouth's openness per video frame), drawn over it
  segments.forEach((s, i) => {
    if (!s.blob || !current) return;
    api(`/v1/avatar/sessions/${encodeURIComponent(current.id)}/segments/${s.segment}/lipsync`)
      .then((track) => {
        const a = ((s.started_at || start) - start) / ((end - start) || 1) * width;
        const b = ((s.ended_at || end) - start) / ((end - start) || 1) * width;
        const step = Math.max(2, b - a) / Math.max(1, track.mouth.length);
        const line = document.createElementNS(svg.namespaceURI, "polyline");
        line.setAttribute("points", track.mouth.map((m, k) =>
          `${(a + k * step).toFixed(1)},${(i * 24 + 20 - m * 16).toFixed(1)}`).join(" "));
        line.setAttribute("class", "lipsync");
        svg.append(line);
      }).catch(() => {});  // audio past its retention: the segment's span stays
  });
  return box;
}

// ------------------------------------------------------------------ start, stop, fork

function ask(title, fields) {
  const dialog = $("#dialog"), form = $("#dialog-form");
  form.replaceChildren(el("h3", { text: title }), ...fields.map((f) => el("label", {}, `${f.label} `, f.input)),
    el("div", {}, el("button", { value: "ok", text: "OK" }), " ", el("button", { value: "cancel", formnovalidate: "", text: "Cancel" })));
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

function select(options, value) {
  const s = el("select");
  for (const [v, label] of options) s.append(el("option", { value: v, text: label }));
  if (value) s.value = value;
  return s;
}

async function records() {
  const [agents, scenarios, models] = await Promise.all([
    fetch("/agents").then((r) => r.json()), fetch("/scenarios").then((r) => r.json()),
    fetch("/models").then((r) => r.json())]);
  return { agents, scenarios, models };
}

$("#start-episode").addEventListener("click", async () => {
  try {
    const { agents, scenarios, models } = await records();
    const people = agents.map((a) => [a.pk, `${a.first_name} ${a.last_name}`]);
    const env = select(scenarios.map((s) => [s.pk, s.codename || s.pk]));
    const a1 = select(people, people[0] && people[0][0]);
    const a2 = select(people, people[1] && people[1][0]);
    const model = select(models.map((m) => [m, m]), "builtin");
    const turns = el("input", { type: "number", min: "2", max: "40", value: "6" });
    if (!(await ask("Start a Sotopia episode", [
      { label: "scenario", input: env }, { label: "agent 1", input: a1 },
      { label: "agent 2", input: a2 }, { label: "model", input: model },
      { label: "turns", input: turns }]))) return;
    const res = await fetch("/simulate", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ env_id: env.value, agent_ids: [a1.value, a2.value],
        models: [model.value, model.value, model.value], max_turns: Number(turns.value), tag: "console" }) });
    const id = await res.text();
    if (!res.ok) throw new Error(`${res.status}: ${id}`);
    view.kind = "sotopia_episode";
    await loadKinds();
    await openKind("sotopia_episode");
    await openEntity("sotopia_episode", id);
  } catch (err) { showError(err); }
});

$("#start-batch").addEventListener("click", async () => {
  try {
    const { models } = await records();
    const model = select(models.map((m) => [m, m]), "builtin");
    const reps = el("input", { type: "number", min: "1", max: "20", value: "2" });
    const tag = el("input", { value: "negotiation" });
    if (!(await ask("Start a small Sotopia batch", [
      { label: "scenarios tagged", input: tag }, { label: "model", input: model },
      { label: "repetitions", input: reps }]))) return;
    const started = await api("/v1/batches", { method: "POST", body: {
      spec: { scenarios: [`tag:${tag.value}`], models: [model.value], reps: Number(reps.value), max_turns: 6 },
      concurrency: 20 } });
    await loadKinds();
    await openKind("sotopia_batch");
    await openEntity("sotopia_batch", started.batch_id);
  } catch (err) { showError(err); }
});

$("#stop-entity").addEventListener("click", async () => {
  if (!current) return;
  try {
    const path = current.kind === "sotopia_batch"
      ? `/v1/batches/${encodeURIComponent(current.id)}/stop`
      : `/v1/episodes/${encodeURIComponent(current.id)}/stop`;
    await api(path, { method: "POST" });
  } catch (err) { showError(err); }
});

$("#fork").addEventListener("click", async () => {
  if (!current) return;
  try {
    const version = current.shown;
    let created;
    if (current.kind === "sotopia_episode") {
      const { models } = await records();
      const which = select([["1", "agent 1"], ["2", "agent 2"]], "2");
      const model = select(models.map((m) => [m, m]), models[0]);
      if (!(await ask(`Fork this episode at version ${version}`, [
        { label: "give", input: which }, { label: "the model", input: model }]))) return;
      created = await api(`/v1/episodes/${encodeURIComponent(current.id)}/fork`,
        { method: "POST", body: { version, agent: Number(which.value), model: model.value } });
    } else if (current.kind === "sotopia_batch") {
      const { models } = await records();
      const turn = el("input", { type: "number", min: "0", max: "40", value: "2" });
      const which = select([["1", "agent 1"], ["2", "agent 2"]], "2");
      const model = select(models.map((m) => [m, m]), models[0]);
      if (!(await ask("Fork every completed episode of this batch", [
        { label: "after turn", input: turn }, { label: "give", input: which },
        { label: "the model", input: model }]))) return;
      const made = await api(`/v1/batches/${encodeURIComponent(current.id)}/fork`, { method: "POST",
        body: { turn: Number(turn.value), agent: Number(which.value), model: model.value } });
      created = { kind: "sotopia_batch", id: made.batch_id };
    } else {
      if (!(await ask(`Fork this ${current.kind} at version ${version}`, []))) return;
      created = await api(`${current.base()}/fork`, { method: "POST", body: { version } });
    }
    await loadKinds();
    await loadRows();
    await openEntity(created.kind, created.id);
  } catch (err) { showError(err); }
});

// ------------------------------------------------------------------ start

if (token) {
  signIn(token).catch(() => { $("#login").hidden = false; });
} else {
  $("#login").hidden = false;
}
