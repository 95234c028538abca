// The operator dashboard (docs/dashboard.md). Plain browser JavaScript with no
// dependencies, served by the Worker under a CSP that allows this origin only.
// The admin token lives in sessionStorage and travels only in the
// Authorization header; the live feed's WebSocket authenticates with a
// single-use ticket obtained with the token, so no token is ever in a URL.
"use strict";

(() => {
  const TOKEN_KEY = "edge-session.admin-token";
  /** How often totals and the table refresh. */
  const REFRESH_MS = 3000;
  const PAGE_SIZE = 25;
  /** Spend samples kept for the chart: an hour at one every 3 s. */
  const MAX_SAMPLES = 1200;
  const TIERS = ["SIMPLE", "MEDIUM", "COMPLEX", "REASONING"];
  const TIMELINE_MAX = 256;
  const RECONNECT_MIN_MS = 500;
  const RECONNECT_MAX_MS = 10000;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  const namespaceHeader = document.body.dataset.namespaceHeader || "";

  const state = {
    /** Cursor of each page shown so far: cursors[i] fetches page i + 1. */
    cursors: [undefined],
    page: 0,
    nextCursor: undefined,
    samples: [],
    timer: undefined,
    refreshing: false,
    /** The session whose detail is open: { id, tenant }. */
    open: undefined,
    view: undefined,
    ended: false,
    lastSeq: 0,
    seenSeqs: new Set(),
    socket: undefined,
    reconnectMs: RECONNECT_MIN_MS,
    reconnectTimer: undefined,
    viewTimer: undefined,
    viewLoadTimer: undefined,
    /** Bumped whenever the open session changes, so stale callbacks do nothing. */
    generation: 0,
  };

  // ---- formatting ----------------------------------------------------------

  function usd(micros) {
    if (micros === null || micros === undefined) return "–";
    const value = micros / 1e6;
    if (value !== 0 && Math.abs(value) < 0.01) return `$${value.toFixed(4)}`;
    return `$${value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
    return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
  }

  function percent(ratio) {
    return ratio === null || ratio === undefined ? "–" : `${(ratio * 100).toFixed(1)}%`;
  }

  function clock(ms) {
    const d = new Date(ms);
    return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- the API ---------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  /** A call to the admin API; `tenant` adds the tenant header for a scoped session. */
  async function api(method, path, { body, tenant } = {}) {
    const headers = { authorization: `Bearer ${token()}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (tenant && namespaceHeader) headers[namespaceHeader] = tenant;
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store", credentials: "omit" });
    } catch (err) {
      throw new ApiError(0, "network", `cannot reach the service: ${err.message}`);
    }
    if (res.status === 204) return null;
    let json;
    try {
      json = await res.json();
    } catch {
      throw new ApiError(res.status, "bad_response", `HTTP ${res.status} without a JSON body`);
    }
    if (!res.ok) {
      const error = json && json.error ? json.error : {};
      throw new ApiError(res.status, error.code || "error", `${error.code || res.status}: ${error.message || "request failed"}`);
    }
    return json;
  }

  const sessionPath = (id, suffix = "") => `/v1/sessions/${encodeURIComponent(id)}${suffix}`;

  /** 401 and 403 mean the token is wrong: forget it and ask again. */
  function handleAuthError(err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      signOut(err.status === 403 ? "That token is not the admin token." : "The token was refused.");
      return true;
    }
    return false;
  }

  // ---- sign-in -----------------------------------------------------------------

  function showApp() {
    $("login").hidden = true;
    $("app").hidden = false;
    $("sign-out").hidden = false;
    $("open-tenant").hidden = namespaceHeader === "";
    refresh();
    clearInterval(state.timer);
    state.timer = setInterval(refresh, REFRESH_MS);
  }

  function signOut(message = "") {
    sessionStorage.removeItem(TOKEN_KEY);
    clearInterval(state.timer);
    closeDetail();
    $("app").hidden = true;
    $("sign-out").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message;
    $("refresh-status").textContent = "not signed in";
    $("token-input").value = "";
    $("token-input").focus();
  }

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token-input").value.trim();
    if (value === "") return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $("token-input").value = "";
    $("login-error").textContent = "";
    showApp();
  });

  $("sign-out").addEventListener("click", () => signOut());

  // ---- totals and the table ----------------------------------------------------------

  async function refresh() {
    if (state.refreshing || !token()) return;
    state.refreshing = true;
    try {
      const cursor = state.cursors[state.page];
      const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (cursor) query.set("cursor", cursor);
      let stats;
      try {
        stats = await api("GET", `/v1/stats?${query}`);
      } catch (err) {
        // A cursor lives an hour: start again from the first page.
        if (err instanceof ApiError && err.code === "invalid_cursor") {
          state.cursors = [undefined];
          state.page = 0;
          stats = await api("GET", `/v1/stats?limit=${PAGE_SIZE}`);
        } else throw err;
      }
      state.nextCursor = stats.nextCursor;
      renderTotals(stats);
      renderTable(stats.sessions || []);
      $("app-error").textContent = "";
      $("refresh-status").textContent = `updated ${clock(Date.now())} · every ${REFRESH_MS / 1000}s`;
    } catch (err) {
      if (!handleAuthError(err)) $("app-error").textContent = `Stats: ${err.message}`;
    } finally {
      state.refreshing = false;
    }
  }

  function renderTotals(stats) {
    $("total-sessions").textContent = String(stats.count ?? 0);
    const spend = typeof stats.spendMicros === "number" ? stats.spendMicros : null;
    $("total-spend").textContent = spend === null ? "–" : usd(spend);
    const cache = stats.cache || {};
    $("total-cache").textContent = percent(cache.hitRatio);
    $("total-cache-tokens").textContent =
      typeof cache.inputTokens === "number" && cache.inputTokens > 0
        ? `${(cache.cachedInputTokens ?? 0).toLocaleString("en-US")} of ${cache.inputTokens.toLocaleString("en-US")} input tokens`
        : "no usage reported yet";

    if (spend !== null) {
      state.samples.push({ at: Date.now(), micros: spend });
      if (state.samples.length > MAX_SAMPLES) state.samples.shift();
    }
    drawSpend();
    drawTiers(stats.byTier || {});

    const list = $("by-model");
    list.replaceChildren(
      ...Object.entries(stats.byModel || {})
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .map(([model, count]) => el("li", {}, el("span", { class: "mono", text: model }), el("span", { class: "count", text: String(count) }))),
    );
    if (list.childElementCount === 0) list.append(el("li", { class: "muted", text: "none" }));
  }

  function drawSpend() {
    const box = $("chart-spend");
    const width = 300;
    const height = 84;
    const pad = { left: 4, right: 4, top: 14, bottom: 4 };
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", "aria-hidden": "true" });
    const samples = state.samples;
    if (samples.length === 0) {
      root.append(svg("text", { x: pad.left, y: 12 }, "no samples yet"));
      box.replaceChildren(root);
      return;
    }
    const t0 = samples[0].at;
    const t1 = Math.max(samples[samples.length - 1].at, t0 + 1);
    const values = samples.map((s) => s.micros);
    const low = Math.min(...values);
    const high = Math.max(...values, low + 1);
    const x = (at) => pad.left + ((at - t0) / (t1 - t0)) * (width - pad.left - pad.right);
    const y = (v) => height - pad.bottom - ((v - low) / (high - low)) * (height - pad.top - pad.bottom);
    const points = samples.map((s) => `${x(s.at).toFixed(1)},${y(s.micros).toFixed(1)}`);
    if (samples.length === 1) points.push(`${(width - pad.right).toFixed(1)},${y(samples[0].micros).toFixed(1)}`);
    const base = height - pad.bottom;
    root.append(
      svg("line", { x1: pad.left, x2: width - pad.right, y1: base, y2: base, stroke: "#2a3340", "stroke-width": 1 }),
      svg("polygon", { points: `${pad.left},${base} ${points.join(" ")} ${width - pad.right},${base}`, fill: "rgba(76,194,255,0.12)" }),
      svg("polyline", { points: points.join(" "), fill: "none", stroke: "#4cc2ff", "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" }),
      svg("text", { x: pad.left, y: 10 }, `${usd(values[values.length - 1])} now · ${usd(values[values.length - 1] - values[0])} since ${clock(t0)}`),
    );
    box.setAttribute("aria-label", `Spend over time: ${usd(values[values.length - 1])} now, ${usd(values[0])} at ${clock(t0)}`);
    box.replaceChildren(root);
  }

  function drawTiers(byTier) {
    const box = $("chart-tier");
    const width = 300;
    const height = 84;
    const labelW = 74;
    const rowH = height / TIERS.length;
    const max = Math.max(1, ...TIERS.map((t) => byTier[t] || 0));
    const colors = { SIMPLE: "#7ee787", MEDIUM: "#4cc2ff", COMPLEX: "#b392f0", REASONING: "#ffa657" };
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, "aria-hidden": "true" });
    TIERS.forEach((tier, i) => {
      const count = byTier[tier] || 0;
      const barW = ((width - labelW - 34) * count) / max;
      const top = i * rowH;
      root.append(
        svg("text", { x: 0, y: top + rowH / 2 + 3.5 }, tier),
        svg("rect", { x: labelW, y: top + 3, width: width - labelW - 34, height: rowH - 6, rx: 2, fill: "#1c232d" }),
        svg("rect", { x: labelW, y: top + 3, width: Math.max(count > 0 ? 2 : 0, barW), height: rowH - 6, rx: 2, fill: colors[tier] }),
        svg("text", { x: width - 28, y: top + rowH / 2 + 3.5 }, String(count)),
      );
    });
    box.setAttribute("aria-label", `Sessions by tier: ${TIERS.map((t) => `${t} ${byTier[t] || 0}`).join(", ")}`);
    box.replaceChildren(root);
  }

  function statusPill(paused) {
    if (paused === undefined) return el("span", { class: "pill", text: "–" });
    return el("span", { class: `pill ${paused ? "paused" : "live"}`, text: paused ? "paused" : "live" });
  }

  function renderTable(rows) {
    const body = $("sessions-body");
    body.replaceChildren(
      ...rows.map((row) => {
        const openable = typeof row.sessionId === "string";
        const tr = el(
          "tr",
          {
            "data-testid": "session-row",
            "data-session-id": openable ? row.sessionId : undefined,
            "data-tenant": row.tenant,
            class: [
              openable ? "" : "unopenable",
              state.open && openable && state.open.id === row.sessionId && (state.open.tenant || undefined) === row.tenant ? "selected" : "",
            ]
              .join(" ")
              .trim(),
            tabindex: openable ? 0 : undefined,
            "aria-label": openable ? `Open session ${row.sessionId}${row.tenant ? ` of tenant ${row.tenant}` : ""}` : undefined,
          },
          el("td", { class: "mono" }, row.tenant ? el("span", { class: "tenant", text: `${row.tenant}/` }) : null, row.id),
          el("td", { class: "mono", text: row.model }),
          el("td", {}, row.tier ? el("span", { class: `tier tier-${row.tier}`, text: row.tier }) : "–"),
          el("td", { class: "num", text: duration(row.age) }),
          el("td", { class: "num", text: usd(row.sessionCostMicros) }),
          el("td", { class: `num ${row.strikes > 0 ? "strikes-hot" : ""}`, text: row.strikes === undefined ? "–" : String(row.strikes) }),
          el("td", {}, statusPill(row.paused)),
        );
        if (openable) {
          const open = () => openSession(row.sessionId, row.tenant);
          tr.addEventListener("click", open);
          tr.addEventListener("keydown", (event) => {
            if (event.key === "Enter" || event.key === " ") {
              event.preventDefault();
              open();
            }
          });
        }
        return tr;
      }),
    );
    $("sessions-empty").hidden = rows.length > 0;
    $("page-label").textContent = `page ${state.page + 1}`;
    $("page-first").disabled = state.page === 0;
    $("page-next").disabled = !state.nextCursor;
  }

  $("page-next").addEventListener("click", () => {
    if (!state.nextCursor) return;
    state.cursors[state.page + 1] = state.nextCursor;
    state.page += 1;
    refresh();
  });

  $("page-first").addEventListener("click", () => {
    state.cursors = [undefined];
    state.page = 0;
    refresh();
  });

  $("open-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("open-id").value.trim();
    if (id === "") return;
    openSession(id, $("open-tenant").value.trim() || undefined);
  });

  // ---- one session -------------------------------------------------------------------

  function closeDetail() {
    state.generation += 1;
    state.open = undefined;
    state.view = undefined;
    closeSocket();
    clearInterval(state.viewTimer);
    clearTimeout(state.viewLoadTimer);
    $("detail").hidden = true;
    for (const tr of document.querySelectorAll("#sessions-body tr.selected")) tr.classList.remove("selected");
  }

  $("detail-close").addEventListener("click", closeDetail);

  function openSession(id, tenant) {
    closeDetail();
    state.open = { id, tenant: tenant || undefined };
    state.ended = false;
    state.lastSeq = 0;
    state.seenSeqs = new Set();
    state.reconnectMs = RECONNECT_MIN_MS;
    $("detail").hidden = false;
    $("detail-id").textContent = id;
    $("detail-tenant").hidden = !tenant;
    $("detail-tenant").textContent = tenant ? `tenant ${tenant}` : "";
    $("detail-error").textContent = "";
    $("timeline").replaceChildren();
    $("action-end-confirm").hidden = true;
    $("budget-input").value = "";
    $("pin-model").value = "";
    $("pin-tier").value = "SIMPLE";
    renderView(undefined);
    for (const tr of document.querySelectorAll("#sessions-body tr")) {
      tr.classList.toggle("selected", tr.dataset.sessionId === id && (tr.dataset.tenant || undefined) === state.open.tenant);
    }
    loadView();
    state.viewTimer = setInterval(loadView, REFRESH_MS);
    connect(state.generation);
  }

  async function loadView() {
    const open = state.open;
    if (!open) return;
    const generation = state.generation;
    try {
      const view = await api("GET", sessionPath(open.id), { tenant: open.tenant });
      if (generation !== state.generation) return;
      state.ended = false;
      renderView(view);
    } catch (err) {
      if (generation !== state.generation || handleAuthError(err)) return;
      if (err instanceof ApiError && err.code === "session_not_found") {
        state.ended = true;
        renderView(null);
      } else $("detail-error").textContent = err.message;
    }
  }

  /** `undefined`: loading; `null`: no live session. */
  function renderView(view) {
    state.view = view;
    const set = (id, text) => ($(id).textContent = text);
    const status = $("detail-status");
    if (view === null) {
      status.replaceChildren(el("span", { class: "pill ended", text: "ended" }));
    } else if (view === undefined) {
      status.textContent = "…";
    } else {
      status.replaceChildren(statusPill(Boolean(view.paused)));
      if (view.adminPinned) status.append(" ", el("span", { class: "pill", text: "pinned" }));
    }
    const v = view || {};
    set("detail-model", v.model ?? "–");
    $("detail-tier").replaceChildren(v.tier ? el("span", { class: `tier tier-${v.tier}`, text: v.tier }) : "–");
    set("detail-strikes", v.strikes ?? "–");
    set("detail-requests", v.requestCount ?? "–");
    set("detail-cost", view ? usd(v.sessionCostMicros) : "–");
    set("detail-budget", view ? (v.budgetMicros === null ? "none" : usd(v.budgetMicros)) : "–");
    set("detail-reserved", view ? `${usd(v.reservedMicros)}${v.inFlight ? ` · ${v.inFlight} in flight` : ""}` : "–");
    set("detail-cache", view && v.inputTokens > 0 ? percent((v.cachedInputTokens ?? 0) / v.inputTokens) : "–");
    set("detail-deployment", v.deployment ?? "–");
    set("detail-age", view ? duration((Date.now() - v.createdAt) / 1000) : "–");
    set("detail-idle", view ? duration((Date.now() - v.lastUsedAt) / 1000) : "–");
    const live = Boolean(view);
    $("action-pause").disabled = !live || Boolean(v.paused);
    $("action-resume").disabled = !live || !v.paused;
    $("action-end").disabled = !live;
    $("action-budget").disabled = !live;
    $("action-pin").disabled = !live;
    $("action-unpin").disabled = !live || !v.adminPinned;
    // The current model as a placeholder: Pin with the field empty pins it as it is.
    $("pin-model").placeholder = live ? v.model : "";
    const budgetInput = $("budget-input");
    if (live && document.activeElement !== budgetInput && budgetInput.value === "" && typeof v.budgetMicros === "number") {
      budgetInput.value = ((v.budgetMicros * 2) / 1e6).toFixed(2);
    }
  }

  async function act(label, method, suffix, body) {
    const open = state.open;
    if (!open) return;
    const generation = state.generation;
    $("detail-error").textContent = "";
    try {
      const view = await api(method, sessionPath(open.id, suffix), { body, tenant: open.tenant });
      if (generation !== state.generation) return;
      if (view && typeof view === "object" && "model" in view) renderView(view);
      else await loadView();
    } catch (err) {
      if (generation !== state.generation || handleAuthError(err)) return;
      $("detail-error").textContent = `${label}: ${err.message}`;
      await loadView();
    }
  }

  $("action-pause").addEventListener("click", () => act("Pause", "POST", "/pause"));
  $("action-resume").addEventListener("click", () => act("Resume", "POST", "/resume"));
  $("action-end").addEventListener("click", () => {
    $("action-end-confirm").hidden = false;
    $("action-end-confirm").focus();
  });
  $("action-end-confirm").addEventListener("click", async () => {
    $("action-end-confirm").hidden = true;
    await act("End", "DELETE", "");
    refresh();
  });
  $("budget-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const raw = $("budget-input").value.trim();
    const usdValue = Number(raw);
    if (raw === "" || !Number.isFinite(usdValue) || usdValue < 0) {
      $("detail-error").textContent = "Budget: give a number of US dollars, 0 or more.";
      return;
    }
    act("Budget", "PUT", "/budget", { budgetMicros: Math.round(usdValue * 1e6) });
  });

  $("pin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const model = $("pin-model").value.trim() || $("pin-model").placeholder;
    if (model === "") {
      $("detail-error").textContent = "Pin: give a model name.";
      return;
    }
    act("Pin", "PUT", "/pin", { model, tier: $("pin-tier").value });
  });
  $("action-unpin").addEventListener("click", () => act("Unpin", "DELETE", "/pin"));

  // ---- the live timeline -----------------------------------------------------------------

  function liveStatus(text, kind) {
    const pill = $("live-status");
    pill.textContent = text;
    pill.className = `pill ${kind}`;
  }

  function closeSocket() {
    clearTimeout(state.reconnectTimer);
    const socket = state.socket;
    state.socket = undefined;
    // Its handlers check the generation, which closeDetail has moved on: they do nothing now.
    if (socket) socket.close(1000);
    liveStatus("offline", "");
  }

  /** A ticket for this session, then the socket, resuming after the last event seen. */
  async function connect(generation) {
    const open = state.open;
    if (!open || generation !== state.generation) return;
    liveStatus("connecting", "");
    let ticket;
    try {
      ({ ticket } = await api("POST", sessionPath(open.id, "/live-ticket"), { tenant: open.tenant }));
    } catch (err) {
      if (generation !== state.generation || handleAuthError(err)) return;
      liveStatus("offline", "error");
      $("detail-error").textContent = `Live feed: ${err.message}`;
      scheduleReconnect(generation);
      return;
    }
    if (generation !== state.generation) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams({ ticket, after: String(state.lastSeq) });
    const socket = new WebSocket(`${scheme}//${location.host}${sessionPath(open.id, "/live")}?${query}`);
    state.socket = socket;
    socket.addEventListener("open", () => {
      if (generation !== state.generation) return;
      state.reconnectMs = RECONNECT_MIN_MS;
      liveStatus("live", "live");
    });
    socket.addEventListener("message", (message) => {
      if (generation !== state.generation) return;
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      addEvent(event);
    });
    socket.addEventListener("close", () => {
      if (generation !== state.generation) return;
      state.socket = undefined;
      liveStatus("reconnecting", "error");
      scheduleReconnect(generation);
    });
  }

  function scheduleReconnect(generation) {
    clearTimeout(state.reconnectTimer);
    const wait = state.reconnectMs;
    state.reconnectMs = Math.min(RECONNECT_MAX_MS, state.reconnectMs * 2);
    state.reconnectTimer = setTimeout(() => connect(generation), wait);
  }

  function describe(event) {
    const tierOf = (m, t) => (t ? `${m} (${t})` : m);
    switch (event.type) {
      case "created":
        return `on ${tierOf(event.model, event.tier)}`;
      case "model_changed": {
        const from = event.from ? tierOf(event.from.model, event.from.tier) : "?";
        const to = tierOf(event.model, event.tier);
        return `${from} → ${to}, ${event.reason}${event.deployment ? ` · deployment ${event.deployment}` : ""}`;
      }
      case "escalated":
        return `${event.strikes} strikes → ${tierOf(event.model, event.tier)}`;
      case "cache_sticky":
        return `cache-sticky on ${event.provider} for ${duration(event.ttlMs / 1000)}`;
      case "budget_threshold":
        return `${event.percent}% of budget: ${usd(event.sessionCostMicros)} of ${usd(event.budgetMicros)}`;
      case "pinned":
        return `pinned to ${tierOf(event.model, event.tier)}`;
      case "budget_changed":
        return event.budgetMicros === null ? "budget removed" : `budget set to ${usd(event.budgetMicros)}`;
      case "ended":
        return event.reason;
      case "paused":
      case "resumed":
      case "unpinned":
        return "";
      default: {
        const { seq: _seq, at: _at, type: _type, actor: _actor, ...rest } = event;
        return JSON.stringify(rest);
      }
    }
  }

  function addEvent(event) {
    if (typeof event.seq !== "number" || state.seenSeqs.has(event.seq)) return;
    state.seenSeqs.add(event.seq);
    state.lastSeq = Math.max(state.lastSeq, event.seq);
    const item = el(
      "li",
      { "data-testid": "timeline-event", "data-type": event.type, "data-seq": event.seq },
      el("span", { class: "when", text: clock(event.at) }),
      el(
        "span",
        { class: `type ${event.type}` },
        event.type.replaceAll("_", " "),
        event.actor === "admin" ? el("span", { class: "actor", text: "admin" }) : null,
      ),
      el("span", { class: "what", text: describe(event) }),
    );
    // Newest first; events arrive in seq order, and a replayed one is skipped above.
    const list = $("timeline");
    const after = [...list.children].find((li) => Number(li.dataset.seq) < event.seq);
    list.insertBefore(item, after || null);
    while (list.childElementCount > TIMELINE_MAX) list.lastElementChild.remove();
    // The event changed the session: show its numbers now rather than at the next poll.
    if (event.type === "ended") {
      state.ended = true;
      renderView(null);
    } else scheduleViewLoad();
  }

  /** One read of the session after a burst of events (a backlog arrives as many frames at once). */
  function scheduleViewLoad() {
    clearTimeout(state.viewLoadTimer);
    state.viewLoadTimer = setTimeout(loadView, 150);
  }

  // ---- start -------------------------------------------------------------------------------

  if (token()) showApp();
  else $("token-input").focus();
})();
