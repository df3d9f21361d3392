// The dashboard of bgjobd: polls /api/state once a second and shows it;
// with "actions" on, its buttons POST to /api/{cancel,retry,pause,resume}
// with the page's token (the browser adds the Origin header).
//
// Module output (stderr, and every other string the state carries) is
// untrusted: it reaches the page only through textContent and DOM
// properties, never as markup. The page runs under a CSP without inline
// script or style: no inline handlers, no style attributes.
//
// Elements (stable, for scripts and the browser test):
//   #version, #uptime              version and uptime
//   #journal[data-state]           "syncing" | "failing" | "memory"; #journal-error holds the error
//   #conn[data-state]              "live" | "stale" (the last poll failed); #conn-error says why
//   #restarted                     shown once bgjobd has restarted since the page loaded (the
//                                  page it serves has another token: this one must be reloaded)
//   #counts .tile[data-count=K] .n jobs running / waiting / scheduled / failed
//   #cluster                       shown when the state's "cluster" is not null
//   #message[data-ok]              the answer to the last action
//   #modules tr[data-module=NAME]  td.waiting .running .done .failed .p50 .p95 .policy .state
//                                  (the row has class "paused" when paused)
//   #chart-rate, #chart-times      the two charts (canvas); #legend-rate, #legend-times
//   #running tr[data-id=N]         td.module .listener .attempt .age; progress (hidden without
//                                  progress) and span.progress-text; a direct call's row has
//                                  class "direct" and no data-id
//   #failed tr[data-id=N]          td.module .attempts .age .exit; pre.stderr
//   #running-total, #failed-total  "N of M" when the lists are capped
//   button[data-action]            "cancel" / "retry" (data-id), "retry-module" / "pause" /
//                                  "resume" (data-module); present only when actions are on
//   body.actions-off               actions are off in the config
"use strict";
(() => {
  const TOKEN = document.querySelector('meta[name="bgjob-token"]').content;
  const POLL_MS = 1000;
  /** The charts span the last hour, or less while the daemon is younger. */
  const HOUR_SECS = 3600;

  const byId = (id) => document.getElementById(id);

  /** A new element with a class and text (as text, never markup). */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /** Sets text only when it changed, so a selection or a click survives a poll. */
  function setText(node, text) {
    const value = String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  function show(node, visible) {
    if (node.hidden === visible) node.hidden = !visible;
  }

  // ---- formats -------------------------------------------------------

  const DASH = "–";

  function fmtCount(n) {
    return typeof n === "number" ? n.toLocaleString("en-US") : DASH;
  }

  /** Seconds as "4.2 s", "3 min 10 s", "2 h 5 min", "3 d 4 h". */
  function fmtSecs(secs) {
    if (typeof secs !== "number" || !isFinite(secs)) return DASH;
    if (secs < 10) return `${secs.toFixed(1)} s`;
    if (secs < 60) return `${Math.floor(secs)} s`;
    const s = Math.floor(secs);
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  /** Milliseconds as "0.42 ms", "12.5 ms", "340 ms", "1.25 s". */
  function fmtMs(ms) {
    if (typeof ms !== "number" || !isFinite(ms)) return DASH;
    if (ms < 1) return `${ms.toFixed(2)} ms`;
    if (ms < 100) return `${ms.toFixed(1)} ms`;
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
    return fmtSecs(ms / 1000);
  }

  /** A short axis label of a time in ms. */
  function fmtMsAxis(ms) {
    if (ms === 0) return "0";
    if (ms < 1000) return `${+ms.toPrecision(3)} ms`;
    return `${+(ms / 1000).toPrecision(3)} s`;
  }

  function fmtRate(r) {
    if (typeof r !== "number" || !isFinite(r)) return DASH;
    if (r === 0) return "0/s";
    if (r < 10) return `${+r.toFixed(2)}/s`;
    return `${Math.round(r)}/s`;
  }

  /** A module's policy as "max_jobs 4 · timeout_secs 30"; "defaults" when empty. */
  function fmtPolicy(policy) {
    if (!policy || typeof policy !== "object") return DASH;
    const parts = Object.entries(policy).map(([key, value]) =>
      `${key} ${value !== null && typeof value === "object" ? JSON.stringify(value) : value}`);
    return parts.length ? parts.join(" · ") : "defaults";
  }

  function fmtProgress(p) {
    if (!p) return DASH;
    if (p.total === 100) return `${p.done}%`;
    const pct = p.total > 0 ? Math.floor((100 * p.done) / p.total) : 0;
    return `${p.done}/${p.total} · ${pct}%`;
  }

  // ---- tables --------------------------------------------------------

  /**
   * Makes tbody's rows match items, in order, keeping the row of an item
   * that stays (so that its buttons and the browser's references to it
   * survive a poll): build(item) makes a new row, update(row, item) fills it.
   */
  function syncRows(tbody, items, keyOf, build, update) {
    const old = new Map();
    for (const row of Array.from(tbody.rows)) old.set(row.dataset.key, row);
    let prev = null;
    items.forEach((item, index) => {
      const key = String(keyOf(item, index));
      let row = old.get(key);
      if (row) {
        old.delete(key);
      } else {
        row = build(item);
        row.dataset.key = key;
        labelCells(tbody, row);
      }
      update(row, item);
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== row) tbody.insertBefore(row, want);
      prev = row;
    });
    for (const row of old.values()) row.remove();
    const table = tbody.closest("table");
    const empty = document.querySelector(`p[data-empty="${table.id}"]`);
    show(table.parentElement, items.length > 0);
    if (empty) show(empty, items.length === 0);
  }

  /** Names each cell by its column's heading (data-label), which narrow
   * screens show beside the value, as they stack a row's cells. */
  function labelCells(tbody, row) {
    const head = tbody.closest("table").tHead;
    if (!head) return;
    const headings = head.rows[0].cells;
    Array.from(row.cells).forEach((td, i) => {
      const text = headings[i] ? headings[i].textContent.trim() : "";
      if (text) td.dataset.label = text;
    });
  }

  /** A row with one cell per class name; the cells by name. */
  function row(names) {
    const tr = document.createElement("tr");
    tr.cells$ = {};
    for (const name of names) {
      const td = el("td", name);
      tr.appendChild(td);
      tr.cells$[name] = td;
    }
    return tr;
  }

  function button(action, label, data) {
    const b = el("button", `btn btn-${action}`, label);
    b.type = "button";
    b.dataset.action = action;
    for (const [k, v] of Object.entries(data)) b.dataset[k] = String(v);
    return b;
  }

  const NUM = ["waiting", "running", "done", "failed", "p50", "p95"];

  function buildModule(m) {
    const tr = row(["name", ...NUM, "policy", "state", "act"]);
    tr.dataset.module = m.name;
    for (const name of NUM) tr.cells$[name].classList.add("num");
    tr.cells$.state.appendChild(el("span", "badge"));
    tr.pauseButton = button("pause", "Pause", { module: m.name });
    tr.retryButton = button("retry-module", "Retry failed", { module: m.name });
    tr.cells$.act.append(tr.pauseButton, tr.retryButton);
    return tr;
  }

  function updateModule(tr, m, failedOf) {
    const c = tr.cells$;
    setText(c.name, m.name);
    setText(c.waiting, fmtCount(m.waiting));
    setText(c.running, fmtCount(m.running));
    setText(c.done, fmtCount(m.done_hour));
    setText(c.failed, fmtCount(m.failed_hour));
    setText(c.p50, fmtMs(m.run_p50_ms));
    setText(c.p95, fmtMs(m.run_p95_ms));
    setText(c.policy, fmtPolicy(m.policy));
    const badge = c.state.firstChild;
    setText(badge, m.paused ? "paused" : "active");
    badge.dataset.state = m.paused ? "paused" : "active";
    tr.classList.toggle("paused", !!m.paused);
    tr.classList.toggle("has-failed", m.failed_hour > 0);
    const pb = tr.pauseButton;
    const action = m.paused ? "resume" : "pause";
    if (pb.dataset.action !== action) {
      pb.dataset.action = action;
      pb.className = `btn btn-${action}`;
      setText(pb, m.paused ? "Resume" : "Pause");
    }
    const failed = failedOf(m.name);
    tr.retryButton.hidden = failed === 0;
  }

  /** A running job's row; a direct call (not a queue job) has no id. */
  function buildRunning(j) {
    const tr = row(["id", "module", "listener", "attempt", "age", "progress", "act"]);
    const queued = typeof j.id === "number";
    if (queued) tr.dataset.id = j.id;
    else tr.classList.add("direct");
    for (const name of ["id", "attempt", "age"]) tr.cells$[name].classList.add("num");
    tr.bar = document.createElement("progress");
    tr.barText = el("span", "progress-text");
    tr.cells$.progress.append(tr.bar, tr.barText);
    if (queued) tr.cells$.act.appendChild(button("cancel", "Cancel", { id: j.id }));
    return tr;
  }

  function updateRunning(tr, j) {
    const c = tr.cells$;
    setText(c.id, typeof j.id === "number" ? j.id : "direct");
    setText(c.module, j.module);
    setText(c.listener, j.listener ?? DASH);
    setText(c.attempt, j.attempt ?? DASH);
    setText(c.age, fmtSecs(j.age_secs));
    const p = j.progress;
    show(tr.bar, !!p);
    if (p) {
      const total = p.total > 0 ? p.total : 1;
      // Set even when equal: a <progress> without a value is indeterminate.
      tr.bar.max = total;
      tr.bar.value = Math.min(Math.max(p.done, 0), total);
    }
    setText(tr.barText, fmtProgress(p));
  }

  function buildFailed(j) {
    const tr = row(["id", "module", "attempts", "age", "exit", "stderr", "act"]);
    tr.dataset.id = j.id;
    for (const name of ["id", "attempts", "age"]) tr.cells$[name].classList.add("num");
    tr.pre = el("pre", "stderr");
    tr.cells$.stderr.appendChild(tr.pre);
    tr.cells$.act.appendChild(button("retry", "Retry", { id: j.id }));
    return tr;
  }

  function updateFailed(tr, j) {
    const c = tr.cells$;
    setText(c.id, j.id);
    setText(c.module, j.module);
    setText(c.attempts, j.attempts ?? DASH);
    setText(c.age, fmtSecs(j.age_secs));
    setText(c.exit, j.exit ?? DASH);
    const stderr = typeof j.stderr === "string" ? j.stderr.replace(/\s+$/, "") : "";
    setText(tr.pre, stderr);
    tr.pre.classList.toggle("none", stderr === "");
  }

  function totalText(shown, total) {
    if (typeof total !== "number") return "";
    return shown < total ? `${shown} of ${total}` : `${total}`;
  }

  // ---- charts --------------------------------------------------------

  const RATE_SERIES = [
    { key: "succeeded", name: "succeeded", color: "--c-succeeded", area: true, fmt: fmtRate },
    { key: "started", name: "started", color: "--c-started", fmt: fmtRate },
    { key: "failed", name: "failed", color: "--c-failed", fmt: fmtRate },
  ];
  const TIME_SERIES = [
    { key: "wait_p50_ms", name: "wait p50", color: "--c-wait", fmt: fmtMs },
    { key: "wait_p95_ms", name: "wait p95", color: "--c-wait", dash: true, fmt: fmtMs },
    { key: "run_p50_ms", name: "run p50", color: "--c-run", fmt: fmtMs },
    { key: "run_p95_ms", name: "run p95", color: "--c-run", dash: true, fmt: fmtMs },
  ];

  /** A round step (1, 2 or 5 times a power of ten) for about `max / 4`. */
  function niceStep(max) {
    const raw = max / 4;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / power;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * power;
  }

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  /** Seconds the charts span: the hour, or the uptime rounded up to 5 min. */
  function chartSpan(uptime) {
    if (typeof uptime !== "number" || uptime >= HOUR_SECS) return HOUR_SECS;
    return Math.min(HOUR_SECS, Math.max(300, Math.ceil(uptime / 300) * 300));
  }

  function drawChart(canvas, history, now, span, series, axisFmt) {
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (width === 0 || height === 0) return;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * dpr)) canvas.width = Math.round(width * dpr);
    if (canvas.height !== Math.round(height * dpr)) canvas.height = Math.round(height * dpr);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);

    const points = (history && Array.isArray(history.points)) ? history.points : [];
    const interval = (history && history.interval_secs) || 10;
    const left = 58, right = 10, top = 8, bottom = 22;
    const plotW = Math.max(width - left - right, 10);
    const plotH = Math.max(height - top - bottom, 10);
    const t1 = typeof now === "number" ? now : Date.now() / 1000;
    const t0 = t1 - span;
    const x = (t) => left + ((t - t0) / span) * plotW;
    // A point stands for its interval: drawn at the middle of it.
    const at = (p) => x(p.t + interval / 2);

    let max = 0;
    for (const p of points) {
      if (p.t < t0) continue;
      for (const s of series) {
        const v = p[s.key];
        if (typeof v === "number" && isFinite(v) && v > max) max = v;
      }
    }
    const step = max > 0 ? niceStep(max * 1.1) : 1;
    const yMax = max > 0 ? Math.ceil((max * 1.05) / step) * step : 4;
    const y = (v) => top + plotH - (v / yMax) * plotH;

    const font = `11px ${cssVar("--font") || "sans-serif"}`;
    ctx.font = font;
    ctx.lineWidth = 1;
    ctx.strokeStyle = cssVar("--grid");
    ctx.fillStyle = cssVar("--muted");
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let v = 0; v <= yMax + step / 2; v += step) {
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(left, yy);
      ctx.lineTo(left + plotW, yy);
      ctx.stroke();
      ctx.fillText(axisFmt(+v.toPrecision(6)), left - 6, yy);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const minutes = span / 60;
    const ticks = plotW < 320 ? 3 : 6;
    const every = [1, 2, 5, 10, 15, 20, 30].find((m) => minutes / m <= ticks) || 60;
    for (let m = Math.floor(minutes / every) * every; m >= 0; m -= every) {
      const xx = Math.round(x(t1 - m * 60)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(xx, top + plotH);
      ctx.lineTo(xx, top + plotH + 4);
      ctx.stroke();
      const label = m === 0 ? "now" : `−${m} min`;
      const first = m * 60 >= span;
      ctx.textAlign = first ? "left" : m === 0 ? "right" : "center";
      ctx.fillText(label, first ? Math.max(xx - 8, 0) : xx, top + plotH + 6);
    }

    const visible = points.filter((p) => p.t + interval >= t0);
    if (!visible.some((p) => series.some((s) => typeof p[s.key] === "number"))) {
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(span < HOUR_SECS ? "no jobs yet" : "no jobs in the last hour",
        left + plotW / 2, top + plotH / 2);
    }
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top - 2, plotW + 2, plotH + 4);
    ctx.clip();
    ctx.lineJoin = "round";
    ctx.lineCap = "round";
    for (const s of series) {
      if (s.area) area(ctx, visible, s, interval, at, y, top + plotH);
    }
    for (const s of series) {
      ctx.strokeStyle = cssVar(s.color);
      ctx.fillStyle = ctx.strokeStyle;
      ctx.lineWidth = s.dash ? 1.5 : 2;
      ctx.setLineDash(s.dash ? [5, 4] : []);
      ctx.beginPath();
      let last = null;
      let runLength = 0;
      for (const p of visible) {
        const v = p[s.key];
        const ok = typeof v === "number" && isFinite(v);
        const joined = ok && last && p.t - last.t <= interval * 1.5;
        if (!ok) {
          if (runLength === 1) dot(ctx, last, s.key, at, y);
          last = null;
          runLength = 0;
          continue;
        }
        if (joined) {
          ctx.lineTo(at(p), y(v));
          runLength++;
        } else {
          if (runLength === 1) dot(ctx, last, s.key, at, y);
          ctx.moveTo(at(p), y(v));
          runLength = 1;
        }
        last = p;
      }
      ctx.stroke();
      if (runLength === 1) dot(ctx, last, s.key, at, y);
    }
    ctx.restore();
  }

  /** The area under a series, lightly filled, in runs of joined points. */
  function area(ctx, points, s, interval, at, y, base) {
    ctx.save();
    ctx.fillStyle = cssVar(s.color);
    ctx.globalAlpha = 0.12;
    let run = [];
    const flush = () => {
      if (run.length > 1) {
        ctx.beginPath();
        ctx.moveTo(at(run[0]), base);
        for (const p of run) ctx.lineTo(at(p), y(p[s.key]));
        ctx.lineTo(at(run[run.length - 1]), base);
        ctx.closePath();
        ctx.fill();
      }
      run = [];
    };
    for (const p of points) {
      const v = p[s.key];
      if (typeof v !== "number" || !isFinite(v)) {
        flush();
        continue;
      }
      if (run.length && p.t - run[run.length - 1].t > interval * 1.5) flush();
      run.push(p);
    }
    flush();
    ctx.restore();
  }

  /** A lone point, which a line of one point would not show. */
  function dot(ctx, p, key, at, y) {
    if (!p) return;
    ctx.save();
    ctx.setLineDash([]);
    ctx.beginPath();
    ctx.arc(at(p), y(p[key]), 2.5, 0, Math.PI * 2);
    ctx.fill();
    ctx.restore();
  }

  /** The legend under a chart: each series with its latest value. */
  function updateLegend(ul, series, history) {
    if (ul.children.length !== series.length) {
      ul.replaceChildren();
      for (const s of series) {
        const li = el("li", s.dash ? "dash" : "");
        const swatch = el("span", `swatch sw${s.color}`);
        li.append(swatch, el("span", "name", s.name), el("span", "value"));
        ul.appendChild(li);
      }
    }
    const points = (history && history.points) || [];
    const latest = points.length ? points[points.length - 1] : null;
    series.forEach((s, i) => {
      const v = latest ? latest[s.key] : null;
      setText(ul.children[i].lastChild, v === null || v === undefined ? DASH : s.fmt(v));
    });
  }

  // ---- the state -----------------------------------------------------

  let last = null;

  function renderCluster(cluster) {
    const section = byId("cluster");
    show(section, cluster !== null && cluster !== undefined);
    if (cluster === null || cluster === undefined) return;
    const entries = typeof cluster === "object" ? Object.entries(cluster) : [["cluster", cluster]];
    const tbody = section.querySelector("tbody");
    syncRows(tbody, entries, (e) => e[0], () => {
      const tr = row(["key", "value"]);
      return tr;
    }, (tr, [key, value]) => {
      setText(tr.cells$.key, key);
      setText(tr.cells$.value, value !== null && typeof value === "object" ? JSON.stringify(value) : value);
    });
  }

  /** When the daemon started, by its clock: a later start may be a restart. */
  let startedAt = null;
  let checkingToken = false;

  /**
   * Asks the daemon for its page again and compares the token in it with
   * this page's: a different one means bgjobd restarted, and this page's
   * buttons would be refused until it is reloaded.
   */
  async function checkToken() {
    if (checkingToken) return;
    checkingToken = true;
    try {
      const response = await fetch("/", { cache: "no-store" });
      const match = /<meta name="bgjob-token" content="([0-9a-f]+)"/.exec(await response.text());
      if (match && match[1] !== TOKEN) show(byId("restarted"), true);
    } catch (_) {
      // Unreachable again: the next recovery asks once more.
    } finally {
      checkingToken = false;
    }
  }

  function noteStart(state) {
    if (typeof state.now !== "number" || typeof state.uptime_secs !== "number") return;
    const start = state.now - state.uptime_secs;
    if (startedAt === null) startedAt = start;
    // uptime_secs is whole seconds, so the start moves by up to one.
    if (Math.abs(start - startedAt) > 1.5) {
      startedAt = start;
      checkToken();
    }
  }

  function render(state) {
    last = state;
    noteStart(state);
    document.body.classList.toggle("actions-off", !state.actions);
    setText(byId("version"), `v${state.version}`);
    setText(byId("uptime"), fmtSecs(state.uptime_secs));

    const journal = state.journal || {};
    const jstate = journal.state || "unknown";
    const jbadge = byId("journal");
    setText(jbadge, jstate === "memory" ? "in memory" : jstate);
    jbadge.dataset.state = jstate;
    const jerror = byId("journal-error");
    setText(jerror, journal.error ? `The journal is failing: ${journal.error}` : "");
    show(jerror, !!journal.error || jstate === "failing");
    if (jstate === "failing" && !journal.error) setText(jerror, "The journal is failing.");

    const counts = state.counts || {};
    for (const tile of byId("counts").querySelectorAll(".tile")) {
      const n = counts[tile.dataset.count];
      setText(tile.querySelector(".n"), fmtCount(n));
      tile.classList.toggle("nonzero", typeof n === "number" && n > 0);
    }
    renderCluster(state.cluster);

    // Newest failures first; the longest-running jobs first (ids say
    // nothing of order).
    const byAge = (sign) => (a, b) => sign * ((a.age_secs || 0) - (b.age_secs || 0));
    const failed = Array.isArray(state.failed) ? state.failed.slice().sort(byAge(1)) : [];
    const capped = typeof state.failed_total === "number" && state.failed_total > failed.length;
    const failedBy = new Map();
    for (const j of failed) failedBy.set(j.module, (failedBy.get(j.module) || 0) + 1);
    const failedOf = (name) => (capped ? 1 : failedBy.get(name) || 0);

    syncRows(byId("modules").tBodies[0], state.modules || [], (m) => m.name, buildModule,
      (tr, m) => updateModule(tr, m, failedOf));
    const running = Array.isArray(state.running) ? state.running.slice().sort(byAge(-1)) : [];
    // Direct calls (id null) come last, keyed by their place among them.
    syncRows(byId("running").tBodies[0], running,
      (j, i) => (typeof j.id === "number" ? j.id : `direct-${i}`), buildRunning, updateRunning);
    syncRows(byId("failed").tBodies[0], failed, (j) => j.id, buildFailed, updateFailed);
    setText(byId("running-total"), totalText(running.length, state.running_total));
    setText(byId("failed-total"), totalText(failed.length, state.failed_total));

    drawCharts();
    updateLegend(byId("legend-rate"), RATE_SERIES, state.history);
    updateLegend(byId("legend-times"), TIME_SERIES, state.history);
    document.title = `bgjobd · ${fmtCount(counts.running)} running · ${fmtCount(counts.failed)} failed`;
  }

  function drawCharts() {
    if (!last) return;
    const span = chartSpan(last.uptime_secs);
    const interval = (last.history && last.history.interval_secs) || 10;
    const caption = span < HOUR_SECS ? `since start, per ${interval} s` : `last 60 min, per ${interval} s`;
    for (const node of document.querySelectorAll(".chart .span")) setText(node, caption);
    drawChart(byId("chart-rate"), last.history, last.now, span, RATE_SERIES, (v) => `${v}/s`);
    drawChart(byId("chart-times"), last.history, last.now, span, TIME_SERIES, fmtMsAxis);
  }

  function setConn(ok, error) {
    const conn = byId("conn");
    if (ok && conn.dataset.state === "stale") checkToken();
    setText(conn, ok ? "live" : "stale");
    conn.dataset.state = ok ? "live" : "stale";
    const line = byId("conn-error");
    setText(line, ok ? "" : `Cannot reach bgjobd: ${error}. Showing the last state.`);
    show(line, !ok);
    document.body.classList.toggle("stale", !ok);
  }

  async function poll() {
    const started = Date.now();
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 5000);
    try {
      const response = await fetch("/api/state", { cache: "no-store", signal: abort.signal });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      render(await response.json());
      setConn(true);
    } catch (error) {
      setConn(false, error && error.name === "AbortError" ? "no answer in 5 s" : String(error.message || error));
    } finally {
      clearTimeout(timer);
    }
    return started;
  }

  let pending = null;
  let inFlight = false;
  let again = false;

  /** Polls now, then once a second; never two polls at once (a call
   * during a poll asks for another right after it). */
  async function loop() {
    if (inFlight) {
      again = true;
      return;
    }
    clearTimeout(pending);
    inFlight = true;
    const started = await poll();
    inFlight = false;
    if (again) {
      again = false;
      loop();
      return;
    }
    pending = setTimeout(loop, Math.max(POLL_MS - (Date.now() - started), 100));
  }

  // ---- actions -------------------------------------------------------

  const ACTIONS = {
    cancel: (d) => `/api/cancel?id=${encodeURIComponent(d.id)}`,
    retry: (d) => `/api/retry?id=${encodeURIComponent(d.id)}`,
    "retry-module": (d) => `/api/retry?module=${encodeURIComponent(d.module)}`,
    pause: (d) => `/api/pause?module=${encodeURIComponent(d.module)}`,
    resume: (d) => `/api/resume?module=${encodeURIComponent(d.module)}`,
  };

  let messageTimer = null;

  function showMessage(ok, text) {
    const message = byId("message");
    setText(message, text);
    message.dataset.ok = ok ? "true" : "false";
    show(message, true);
    clearTimeout(messageTimer);
    messageTimer = setTimeout(() => show(message, false), 10000);
  }

  async function act(b) {
    const action = b.dataset.action;
    const path = ACTIONS[action](b.dataset);
    const what = {
      cancel: `cancel job ${b.dataset.id}`,
      retry: `retry job ${b.dataset.id}`,
      "retry-module": `retry the failed jobs of ${b.dataset.module}`,
      pause: `pause ${b.dataset.module}`,
      resume: `resume ${b.dataset.module}`,
    }[action];
    b.disabled = true;
    try {
      const response = await fetch(path, {
        method: "POST",
        cache: "no-store",
        headers: { "X-Bgjob-Token": TOKEN },
      });
      let body = null;
      try {
        body = await response.json();
      } catch (_) {
        body = null;
      }
      const text = body && (body.answer ?? body.error);
      showMessage(response.ok, `${what}: ${text ?? `HTTP ${response.status}`}`);
    } catch (error) {
      showMessage(false, `${what}: ${error.message || error}`);
    } finally {
      b.disabled = false;
      loop();
    }
  }

  document.addEventListener("click", (event) => {
    const b = event.target.closest("button[data-action]");
    if (b && !b.disabled && ACTIONS[b.dataset.action]) act(b);
  });

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(drawCharts, 50);
  });

  loop();
})();
