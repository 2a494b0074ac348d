// sparkd's dashboard: plain JavaScript, no dependencies, served by sparkd itself.
// Data comes from sparkd's own API (/sparkd/status, /sparkd/events, /sparkd/logs, /v1/...),
// authenticated by the session cookie /ui/login set; state changes carry X-Sparkd-UI.
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = { status: null, requests: [], samples: [], states: [], events: null, logAbort: null, paused: false };

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (options.method && options.method !== "GET") headers["X-Sparkd-UI"] = "1";
  const response = await fetch(path, { credentials: "same-origin", ...options, headers });
  if (response.status === 401) { showLogin(); throw new Error("signed out"); }
  return response;
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value; else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

const gib = (bytes) => (bytes == null ? "-" : `${(bytes / 2 ** 30).toFixed(1)} GiB`);
const seconds = (value) => (value == null ? "-" : value < 90 ? `${Math.round(value)}s` : `${Math.round(value / 60)}m`);
const ms = (value) => (value == null ? "-" : `${Math.round(value)} ms`);

function showLogin() {
  $("#login").hidden = false;
  $("#tabs").hidden = true;
  document.querySelectorAll(".tab").forEach((tab) => { tab.hidden = true; });
  if (state.events) { state.events.close(); state.events = null; }
}

async function start() {
  const response = await fetch("/sparkd/status", { credentials: "same-origin" });
  if (response.status === 401) { showLogin(); return; }
  state.status = await response.json();
  $("#login").hidden = true;
  $("#tabs").hidden = false;
  show(location.hash.slice(1) || "models");
  renderStatus();
  listen();
}

function show(name) {
  document.querySelectorAll(".tab").forEach((tab) => { tab.hidden = tab.id !== name; });
  document.querySelectorAll("#tabs [data-tab]").forEach((button) => {
    button.classList.toggle("active", button.dataset.tab === name);
  });
  if (name === "logs") followLogs();
}

// Models -------------------------------------------------------------------------------

function phaseOf(model) {
  return model.start_step === "downloading weights" ? "pulling" : model.phase;
}

function renderStatus() {
  const status = state.status;
  const own = status.sparkd;
  $("#summary").textContent =
    `v${own.version} · tenant ${own.tenant || "none"} · ${own.queued} queued · ${gib(own.memory_available_bytes)} available`;
  const rows = status.models.map((model) => {
    const phase = phaseOf(model);
    const detail = model.pull ? model.pull.line : model.loading || "";
    return el("tr", { "data-model": model.id },
      el("td", {}, model.id),
      el("td", {}, model.role),
      el("td", { class: `state-${phase}` }, phase, detail ? el("div", { class: "muted" }, detail) : ""),
      el("td", {}, String(model.in_flight)),
      el("td", {}, String(model.queued)),
      el("td", {}, seconds(model.idle_stop_in_seconds)),
      el("td", {}, model.need_bytes == null ? "-" : `${model.need_measured ? "" : "~"}${gib(model.need_bytes)}`),
      el("td", {}, model.weights || "-"),
      el("td", {},
        el("button", { onclick: () => control(model.id, "start") }, "Start"),
        el("button", { onclick: () => control(model.id, "stop") }, "Stop"),
        el("button", { onclick: () => control(model.id, `keep-warm?for=${$("#warm-for").value}`) }, "Keep warm"),
        model.weights === "not pulled" ? el("button", { onclick: () => control(model.id, "pull") }, "Pull") : ""));
  });
  $("#model-rows").replaceChildren(...rows);
  offer($("#chat-model"), status.models.map((m) => m.id));
  offer($("#logs-unit"), ["sparkd", ...status.models.map((m) => m.id)]);
  $("#memory-rows").replaceChildren(...status.models.filter((m) => m.memory_bytes || m.observed_need_bytes)
    .map((m) => el("tr", {}, el("td", {}, m.id), el("td", {}, gib(m.memory_bytes)), el("td", {}, gib(m.observed_need_bytes)))));
}

// Redraws a <select> only when its choices change, keeping what the person picked.
function offer(select, values) {
  const current = [...select.options].map((option) => option.value);
  if (current.join("\n") === values.join("\n")) return;
  const picked = select.value;
  select.replaceChildren(...values.map((value) => el("option", { value }, value)));
  if (values.includes(picked)) select.value = picked;
}

async function control(model, action) {
  const response = await api(`/sparkd/models/${encodeURIComponent(model)}/${action}`, { method: "POST" });
  const answer = await response.json();
  $("#action-result").textContent = response.ok
    ? `${answer.model}: ${answer.phase || `${answer.action} asked (${answer.unit})`}${answer.note ? ` (${answer.note})` : ""}`
    : `${model}: ${answer.error ? answer.error.message : response.status}`;
  refresh();
}

let refreshing = null;
function refresh() {
  if (refreshing) return;
  refreshing = setTimeout(async () => {
    refreshing = null;
    try {
      state.status = await (await api("/sparkd/status")).json();
      renderStatus();
    } catch (error) { /* signed out: the login shows */ }
  }, 200);
}

// Live events ----------------------------------------------------------------------------

function listen() {
  if (state.events) state.events.close();
  const events = new EventSource("/sparkd/events");
  state.events = events;
  events.addEventListener("recent", (event) => {
    const recent = JSON.parse(event.data);
    state.requests = recent.request; state.samples = recent.sample; state.states = recent.state;
    renderActivity(); renderMemory();
  });
  events.addEventListener("state", (event) => {
    state.states.push(JSON.parse(event.data)); state.states = state.states.slice(-300);
    renderTimeline(); refresh();
  });
  events.addEventListener("request", (event) => {
    state.requests.push(JSON.parse(event.data)); state.requests = state.requests.slice(-500);
    renderActivity(); refresh();
  });
  events.addEventListener("sample", (event) => {
    state.samples.push(JSON.parse(event.data)); state.samples = state.samples.slice(-2160);
    renderMemory();
  });
  // EventSource reconnects by itself (sparkd restarts on demand); a lost session shows the login.
  events.onerror = () => { fetch("/sparkd/status", { credentials: "same-origin" }).then((r) => { if (r.status === 401) showLogin(); }); };
}

// Activity -------------------------------------------------------------------------------

function renderActivity() {
  const now = Date.now() / 1000;
  const minutes = 30;
  const buckets = new Array(minutes).fill(0);
  for (const request of state.requests) {
    const age = Math.floor((now - request.at) / 60);
    if (age >= 0 && age < minutes) buckets[minutes - 1 - age] += 1;
  }
  drawBars($("#requests-chart"), buckets, `last ${minutes} minutes`);
  const rows = state.requests.slice(-20).reverse().map((r) => el("tr", {},
    el("td", {}, new Date(r.at * 1000).toLocaleTimeString()), el("td", {}, r.model), el("td", {}, r.endpoint),
    el("td", {}, String(r.status)), el("td", {}, ms(r.duration_ms)), el("td", {}, ms(r.ttfb_ms)), el("td", {}, ms(r.queue_ms)),
    el("td", {}, r.tokens_per_s == null ? "-" : String(r.tokens_per_s))));
  $("#request-rows").replaceChildren(...rows);
  renderTimeline();
}

function renderTimeline() {
  const items = state.states.filter((s) => s.phase !== s.was).slice(-30).reverse().map((s) =>
    el("li", {}, `${new Date(s.at * 1000).toLocaleTimeString()} ${s.model}: ${s.was || "?"} → ${s.phase}` +
      (s.took != null ? ` (${seconds(s.took)})` : "")));
  $("#timeline").replaceChildren(...items);
}

function svg(tag, attributes) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

function drawBars(chart, values, caption) {
  const top = Math.max(1, ...values);
  const width = 600 / values.length;
  const bars = values.map((value, i) => svg("rect", {
    x: i * width + 1, y: 150 - (140 * value) / top, width: width - 2, height: (140 * value) / top, fill: "#76b900",
    "data-count": value,
  }));
  const label = svg("text", { x: 4, y: 12 }); label.textContent = `${caption}; most ${top}/min`;
  chart.replaceChildren(...bars, label);
}

// Memory ---------------------------------------------------------------------------------

function renderMemory() {
  const chart = $("#memory-chart");
  const points = state.samples.filter((s) => s.available_bytes != null);
  if (points.length < 2) { chart.replaceChildren(); return; }
  const top = Math.max(...points.map((p) => p.available_bytes));
  const first = points[0].at, span = Math.max(1, points[points.length - 1].at - first);
  const line = (value, colour) => svg("path", {
    d: points.map((p, i) => `${i ? "L" : "M"}${(600 * (p.at - first)) / span},${150 - (140 * (value(p) || 0)) / top}`).join(" "),
    fill: "none", stroke: colour, "stroke-width": 2,
  });
  // Available memory, and each model's need while it ran (what available memory lost since its start).
  const models = [...new Set(points.flatMap((p) => Object.keys(p.models || {})))].slice(0, 4);
  const colours = ["#76b900", "#b54708", "#7a5af8", "#e31b54"];
  const label = svg("text", { x: 4, y: 12 });
  label.textContent = `available now ${gib(points[points.length - 1].available_bytes)} (blue); need solid, cgroup dashed` +
    models.map((m, i) => ` · ${m} (${["green", "orange", "purple", "red"][i]})`).join("");
  const dashed = (value, colour) => { const path = line(value, colour); path.setAttribute("stroke-dasharray", "4 3"); return path; };
  chart.replaceChildren(line((p) => p.available_bytes, "#1d6fb8"),
    ...models.map((m, i) => line((p) => (p.models || {})[m], colours[i])),
    ...models.map((m, i) => dashed((p) => (p.cgroups || {})[m], colours[i])), label);
}

// Logs -----------------------------------------------------------------------------------

async function followLogs() {
  if (state.logAbort) state.logAbort.abort();
  const unit = $("#logs-unit").value || "sparkd";
  const abort = new AbortController();
  state.logAbort = abort;
  $("#log-lines").textContent = "";
  try {
    const response = await api(`/sparkd/logs/${encodeURIComponent(unit)}?lines=200&follow=1`, { signal: abort.signal });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (state.paused) continue;
      const filter = $("#logs-filter").value;
      const lines = decoder.decode(value, { stream: true }).split("\n").filter((l) => l && (!filter || l.includes(filter)));
      const pre = $("#log-lines");
      pre.append(lines.map((l) => `${l}\n`).join(""));
      pre.scrollTop = pre.scrollHeight;
    }
  } catch (error) { /* switched unit or tab, or signed out */ }
}

// Playground -----------------------------------------------------------------------------

async function chat(event) {
  event.preventDefault();
  const model = $("#chat-model").value;
  const answer = $("#chat-answer"), progress = $("#chat-progress");
  answer.textContent = ""; progress.textContent = "sending…"; $("#chat-rewrites").textContent = "";
  const response = await api("/v1/chat/completions", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model, stream: true, messages: [{ role: "user", content: $("#chat-input").value }] }),
  });
  const rewrites = response.headers.get("X-Sparkd-Rewrites");
  if (rewrites) $("#chat-rewrites").textContent = `rewrites: ${rewrites}`;
  if (!response.ok) { progress.textContent = ""; answer.textContent = (await response.json()).error.message; return; }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end); buffer = buffer.slice(end + 2);
      if (block.startsWith(": sparkd: ")) { progress.textContent = block.slice(10); continue; }
      if (!block.startsWith("data: ") || block === "data: [DONE]") continue;
      const data = JSON.parse(block.slice(6));
      if (data.error) { answer.textContent += data.error.message; continue; }
      const delta = (data.choices && data.choices[0] && data.choices[0].delta) || {};
      if (delta.content) { progress.textContent = ""; answer.textContent += delta.content; }
    }
  }
  progress.textContent = "";
}

// Wiring ---------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await fetch("/ui/login", {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ key: $("#login-key").value }),
    });
    if (!response.ok) { $("#login-error").textContent = (await response.json()).error.message; return; }
    $("#login-key").value = ""; $("#login-error").textContent = "";
    start();
  });
  $("#logout").addEventListener("click", async () => {
    await fetch("/ui/logout", { method: "POST", credentials: "same-origin", headers: { "X-Sparkd-UI": "1" } });
    showLogin();
  });
  document.querySelectorAll("#tabs [data-tab]").forEach((button) => {
    button.addEventListener("click", () => { location.hash = button.dataset.tab; show(button.dataset.tab); });
  });
  $("#logs-unit").addEventListener("change", followLogs);
  $("#logs-pause").addEventListener("click", () => {
    state.paused = !state.paused; $("#logs-pause").textContent = state.paused ? "Resume" : "Pause";
  });
  $("#chat-form").addEventListener("submit", chat);
  start();
});
