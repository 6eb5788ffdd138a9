// pgpulse dashboard: polls api/v1/status and redraws in place. Every value
// from the database reaches the page through textContent or an attribute,
// never as markup (table names can hold HTML).
"use strict";

(function () {
  const REFRESH_MS = 3000;
  const SVG = "http://www.w3.org/2000/svg";

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function num(v, digits) {
    if (v === null || v === undefined) return "–";
    return Number(v).toLocaleString("en-US", { maximumFractionDigits: digits || 0 });
  }

  function bytes(v) {
    if (v === null || v === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : String(Math.round(v))) + " " + units[i];
  }

  function secs(v) {
    if (v === null || v === undefined) return "–";
    if (v < 1) return v.toFixed(3) + " s";
    if (v < 120) return v.toFixed(1) + " s";
    return duration(v);
  }

  function duration(v) {
    if (v === null || v === undefined) return "–";
    let s = Math.floor(v);
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (d) return d + "d " + h + "h " + m + "m";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + s + "s";
    return s + "s";
  }

  function clock(t) {
    if (t === null || t === undefined) return "–";
    return new Date(t * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  const STATE_WORD = { ok: "OK", lagging: "LAGGING", down: "DOWN", unknown: "UNKNOWN" };

  function badge(cls, text) {
    return el("span", "badge " + cls, text);
  }

  // One sparkline: values against time over the last `window` seconds;
  // gaps (no sample for a while) break the line.
  function sparkline(label, ts, values, now, window, fmt) {
    const row = el("div", "spark");
    const last = values.length ? values[values.length - 1] : null;
    row.appendChild(el("span", null, label + ": " + fmt(last)));
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 300 40");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label + " over the last " + Math.round(window / 60) + " minutes");
    let max = 0;
    for (const v of values) if (v !== null && v > max) max = v;
    if (max <= 0) max = 1;
    let points = [];
    let prevT = null;
    const flush = () => {
      if (points.length) {
        const line = document.createElementNS(SVG, "polyline");
        if (points.length === 1) points.push(points[0]);
        line.setAttribute("points", points.join(" "));
        svg.appendChild(line);
      }
      points = [];
    };
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i], v = values[i];
      if (t < now - window) continue;
      if (v === null || (prevT !== null && t - prevT > 60)) flush();
      prevT = t;
      if (v === null) continue;
      const x = 300 * (1 - (now - t) / window);
      const y = 38 - 36 * (v / max);
      points.push(x.toFixed(1) + "," + y.toFixed(1));
    }
    flush();
    if (!svg.querySelector("polyline")) {
      const t = document.createElementNS(SVG, "text");
      t.setAttribute("x", "4");
      t.setAttribute("y", "24");
      t.setAttribute("class", "none");
      t.textContent = "no samples yet";
      svg.appendChild(t);
    }
    row.appendChild(svg);
    return row;
  }

  function nodeCard(n, doc) {
    const card = el("article", "node " + n.status);
    card.dataset.server = n.server;
    card.dataset.status = n.status;
    const h = el("h3", null, n.server);
    h.appendChild(badge("role", n.role.toUpperCase()));
    h.appendChild(badge(n.status, STATE_WORD[n.status] || n.status));
    card.appendChild(h);
    card.appendChild(el("p", "status-text", n.status_text));
    const dl = el("dl");
    const add = (k, v) => { dl.appendChild(el("dt", null, k)); dl.appendChild(el("dd", null, v)); };
    add("reachable", n.up ? "yes (pg_up 1)" : "no (pg_up 0)");
    add("version", n.version_string ? n.version_string.replace(/^(PostgreSQL \S+).*$/, "$1") : "–");
    if (n.version_string) dl.lastChild.title = n.version_string;
    add("uptime", duration(n.uptime_seconds));
    add("server time", clock(n.server_time));
    add("connections", num(n.connections));
    add("transactions/s", num(n.tps, 1));
    if (n.role === "standby") {
      const w = n.wal_receiver;
      add("WAL receiver", w ? w.status + (w.upstream_host ? " from " + w.upstream_host : "") : "not running");
      if (w) add("last message", secs(w.last_msg_age_seconds) + " ago");
      add("replay lag", secs(n.lag_seconds) + ", " + bytes(n.lag_bytes));
    }
    add("data age", secs(n.data_age_seconds));
    card.appendChild(dl);
    const sp = el("div", "sparks");
    const hist = n.history || { t: [] };
    const now = doc.generated_at;
    const win = doc.history_seconds || 900;
    sp.appendChild(sparkline("lag", hist.t, hist.lag_bytes || [], now, win, bytes));
    sp.appendChild(sparkline("tx/s", hist.t, hist.tps || [], now, win, (v) => num(v, 1)));
    sp.appendChild(sparkline("connections", hist.t, hist.connections || [], now, win, num));
    card.appendChild(sp);
    return card;
  }

  function headRow(table, cells) {
    const tr = el("tr");
    for (const c of cells) tr.appendChild(el("th", null, c));
    const thead = el("thead");
    thead.appendChild(tr);
    table.appendChild(thead);
  }

  function replicationTable(doc) {
    const table = document.getElementById("replication");
    table.replaceChildren();
    headRow(table, ["primary", "standby (application)", "client address", "state", "sync",
                    "write lag", "flush lag", "replay lag", "lag bytes", "progress"]);
    const body = el("tbody");
    for (const n of doc.nodes) {
      if (n.role !== "primary") continue;
      for (const r of n.replication) {
        const tr = el("tr", r.lagging ? "lagging" : null);
        tr.dataset.application = r.application_name;
        tr.appendChild(el("td", null, n.server));
        tr.appendChild(el("td", null, r.application_name));
        tr.appendChild(el("td", null, r.client_addr));
        tr.appendChild(el("td", r.state === "streaming" ? null : "state-bad",
                          r.state + (r.lagging ? " (lagging)" : "")));
        tr.appendChild(el("td", null, r.sync_state));
        tr.appendChild(el("td", "num", secs(r.write_lag_seconds)));
        tr.appendChild(el("td", "num", secs(r.flush_lag_seconds)));
        tr.appendChild(el("td", "num", secs(r.replay_lag_seconds)));
        tr.appendChild(el("td", "num", bytes(r.lag_bytes)));
        const td = el("td");
        const p = el("progress");
        const lag = r.lag_bytes || 0;
        const pct = Math.max(0, 100 - 100 * lag / doc.lag_bytes_threshold);
        p.max = 100;
        p.value = pct;
        td.appendChild(p);
        td.appendChild(document.createTextNode(lag === 0 ? " caught up" : " " + bytes(lag) + " behind"));
        tr.appendChild(td);
        body.appendChild(tr);
      }
    }
    if (!body.children.length) {
      const tr = el("tr");
      const td = el("td", "missing", "no primary reports a connected standby");
      td.colSpan = 10;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    table.appendChild(body);
  }

  function rowsTable(doc) {
    const table = document.getElementById("rows");
    table.replaceChildren();
    const dbs = new Set();
    for (const n of doc.nodes) for (const d of n.databases) dbs.add(d.name);
    const showDb = dbs.size > 1;
    // every (database, schema, table) seen on any node, each node's count
    const keys = new Map();
    for (const n of doc.nodes) {
      for (const d of n.databases) {
        for (const t of d.tables) {
          const k = JSON.stringify([d.name, t.schema, t.name]);
          if (!keys.has(k)) keys.set(k, { db: d.name, schema: t.schema, name: t.name, by: new Map() });
          keys.get(k).by.set(n.server, t);
        }
      }
    }
    headRow(table, ["table"].concat(doc.nodes.map((n) => n.server + " (" + n.role + ")")));
    const body = el("tbody");
    const sorted = Array.from(keys.values()).sort((a, b) =>
      (a.db + "\u0000" + a.schema + "\u0000" + a.name).localeCompare(b.db + "\u0000" + b.schema + "\u0000" + b.name));
    for (const k of sorted) {
      const tr = el("tr");
      tr.dataset.table = k.schema + "." + k.name;
      let label = k.schema === "public" ? k.name : k.schema + "." + k.name;
      if (showDb) label = k.db + ": " + label;
      tr.appendChild(el("td", "table-name", label));
      for (const n of doc.nodes) {
        const t = k.by.get(n.server);
        let td;
        if (!n.up) td = el("td", "down", "DOWN");
        else if (!t) td = el("td", "missing", "–");
        else if (t.method === "exact") td = el("td", "num exact", num(t.rows));
        else {
          td = el("td", "num estimate", "≈ " + num(t.rows));
          td.title = "estimate: the table is above the exact-count size threshold";
        }
        td.dataset.server = n.server;
        if (t) td.dataset.method = t.method;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    if (!sorted.length) {
      const tr = el("tr");
      const td = el("td", "missing", "no user tables reported yet");
      td.colSpan = doc.nodes.length + 1;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    table.appendChild(body);
  }

  function render(doc) {
    const nodes = document.getElementById("nodes");
    nodes.replaceChildren(...doc.nodes.map((n) => nodeCard(n, doc)));
    if (!doc.nodes.length) nodes.appendChild(el("p", "muted", "no targets configured"));
    replicationTable(doc);
    rowsTable(doc);
    document.getElementById("error").hidden = true;
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  }

  function fail(what) {
    const e = document.getElementById("error");
    e.textContent = "Cannot reach pgpulse (" + what + "): showing the last data received.";
    e.hidden = false;
  }

  async function refresh() {
    try {
      const r = await fetch("api/v1/status", { cache: "no-store" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      render(await r.json());
    } catch (err) {
      fail(err.message || String(err));
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }

  refresh();
})();
