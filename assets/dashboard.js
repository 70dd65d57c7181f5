// modelwatch dashboard: live numbers and charts from GET /events (Server-Sent
// Events), drawn with the vendored uPlot. No framework, no build step. The
// server renders every number into the page first, so without JavaScript the
// page still reads; this script only keeps it current.
(function () {
  "use strict";
  var MAX_POINTS = 600; // as many windows as the server's board keeps
  var root = document.documentElement;
  root.classList.remove("nojs");
  var $ = function (id) { return document.getElementById(id); };
  var BLUE = "#1f5fbf", RED = "#b3261e", BAND = "rgba(27,122,58,0.13)";

  function fmt(v, d) { return (v === null || v === undefined || !isFinite(v)) ? "-" : Number(v).toFixed(d); }
  function pfmt(p) { return !isFinite(p) ? "-" : (p < 1e-3 ? p.toExponential(1) : p.toFixed(3)); }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function uptime(s) {
    s = Math.max(0, Math.floor(s));
    var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, r = s % 60, p = function (n) { return (n < 10 ? "0" : "") + n; };
    return h ? h + "h " + p(m) + "m " + p(r) + "s" : (m ? m + "m " + p(r) + "s" : r + "s");
  }
  // Every counter cell by its key, looked up once. No CSS selector is built
  // from a key: a queue name (any name a user can configure) with `"` or `]`
  // made the selector throw and no chart was drawn.
  var cells = new Map();
  Array.prototype.forEach.call(document.querySelectorAll("[data-k]"), function (el) {
    cells.set(el.getAttribute("data-k"), el);
  });
  function set(key, text) {
    var el = cells.get(key);
    if (el && el.textContent !== text) el.textContent = text;
  }

  // ---- charts -------------------------------------------------------------
  // A classifier's four come with its windows (their charts are on the page only then).
  var metrics = [["mae", "MAE", 2], ["rmse", "RMSE", 2], ["r2", "R²", 3], ["bias", "Bias", 2],
                 ["accuracy", "Accuracy", 3], ["log_loss", "Log loss", 3], ["roc_auc", "ROC AUC", 3], ["brier", "Brier", 3]];
  var xs = [], cols = {}, alerts = [], lastSeq = -1, baseline = null;
  metrics.forEach(function (m) { cols[m[0]] = []; });
  var charts = {}, hist = null;

  function width(el) { return Math.max(240, Math.floor(el.getBoundingClientRect().width)); }

  function lineOpts(label, el) {
    return {
      width: width(el), height: 190, legend: { show: false }, cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      series: [
        {},
        { label: label, stroke: BLUE, width: 2, points: { show: false }, spanGaps: false },
        { label: "baseline p99", stroke: "rgba(27,122,58,0.5)", width: 1, dash: [4, 4], points: { show: false } },
        { label: "baseline p01", stroke: "rgba(27,122,58,0.5)", width: 1, dash: [4, 4], points: { show: false } },
        { label: "alert", stroke: RED, width: 0, paths: function () { return null; },
          points: { show: true, size: 6, fill: RED, stroke: RED } }
      ],
      bands: [{ series: [2, 3], fill: BAND }],
      axes: [{ stroke: "#5b6675", grid: { stroke: "#eceff3" } }, { stroke: "#5b6675", grid: { stroke: "#eceff3" }, size: 56 }]
    };
  }

  function lineData(key) {
    var b = baseline && (baseline[key] || (baseline.classification && baseline.classification[key]));
    var hi = xs.map(function () { return b ? b.p99 : null; });
    var lo = xs.map(function () { return b ? b.p01 : null; });
    var marks = cols[key].map(function (v, i) { return alerts[i] ? v : null; });
    return [xs.slice(), cols[key].slice(), hi, lo, marks];
  }

  // The histogram as error_distribution.png draws it: bars of equal width
  // from 0 (drawn on the canvas under the curve), the density curve in rows
  // per bar, and a dashed line at the training MAE.
  var BAR = "#4682b4", DENSITY = "#08306b", TRAIN = "#c81e1e", histView = null;

  function histRight() {
    var h = histView, right = h ? h.bar_width * h.counts.length : 1;
    var mae = baseline && baseline.mae && baseline.mae.mean;
    return isFinite(mae) && mae > 0 ? Math.max(right, mae * 1.05) : right;
  }
  function histTop() {
    var h = histView, top = 1;
    if (h) {
      h.counts.forEach(function (n) { if (n > top) top = n; });
      if (h.density) h.density.y.forEach(function (y) { if (y > top) top = y; });
    }
    return top * 1.08;
  }

  function drawBars(u) {
    var h = histView;
    if (!h) return;
    var ctx = u.ctx, b = u.bbox;
    ctx.save();
    ctx.beginPath(); ctx.rect(b.left, b.top, b.width, b.height); ctx.clip();
    var y0 = Math.round(u.valToPos(0, "y", true));
    ctx.fillStyle = BAR;
    h.counts.forEach(function (n, i) {
      if (!n) return;
      var x0 = Math.round(u.valToPos(i * h.bar_width, "x", true));
      var x1 = Math.round(u.valToPos((i + 1) * h.bar_width, "x", true));
      var yt = Math.round(u.valToPos(n, "y", true));
      ctx.fillRect(x0, yt, Math.max(1, x1 - x0 - 1), Math.max(1, y0 - yt));
    });
    var mae = baseline && baseline.mae && baseline.mae.mean;
    if (isFinite(mae) && mae > 0) {
      var xm = Math.round(u.valToPos(mae, "x", true)) + 0.5;
      ctx.strokeStyle = TRAIN; ctx.lineWidth = 2 * (window.devicePixelRatio || 1);
      ctx.setLineDash([8, 5]);
      ctx.beginPath(); ctx.moveTo(xm, b.top); ctx.lineTo(xm, y0); ctx.stroke();
    }
    ctx.restore();
  }

  function histOpts(el) {
    return {
      width: width(el), height: 220, legend: { show: false }, cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false, range: function () { return [0, histRight()]; } },
                y: { range: function () { return [0, histTop()]; } } },
      series: [{}, { label: "density", stroke: DENSITY, width: 2.5, points: { show: false } }],
      hooks: { drawAxes: [drawBars] },
      axes: [{ stroke: "#5b6675", grid: { show: false }, size: 34, label: "absolute error |y_true − y_pred|", labelSize: 20 },
             { stroke: "#5b6675", grid: { stroke: "#eceff3" }, size: 56, label: "rows per bar", labelSize: 22 }]
    };
  }

  function drawHistogram(h) {
    var el = $("c-hist");
    if (!el || !h) return; // null: no plot role here, or no render yet
    histView = h;
    var x = [0], y = [null];
    if (h.density && h.density.y.length > 1) {
      var d = h.density, step = (d.hi - d.lo) / (d.y.length - 1);
      x = d.y.map(function (_, i) { return d.lo + i * step; });
      y = d.y.slice();
    }
    var sum = $("hist-summary");
    var mae = baseline && baseline.mae && baseline.mae.mean;
    if (sum) sum.textContent = h.rows + " rows at the last render of the plot, mean " + fmt(h.mean, 2) + ", largest " +
      fmt(h.max, 2) + (isFinite(mae) && mae > 0 ? "; dashed red line: the training MAE, " + fmt(mae, 2) : "") + ".";
    if (!hist) hist = new uPlot(histOpts(el), [x, y], el);
    else hist.setData([x, y]);
  }

  function drawLines() {
    var box = $("charts");
    if (!xs.length) return; // "no windows yet": nothing to plot
    if (box && box.hidden) box.hidden = false;
    metrics.forEach(function (m) {
      var el = $("c-" + m[0]);
      if (!el) return;
      var data = lineData(m[0]);
      if (!charts[m[0]]) charts[m[0]] = new uPlot(lineOpts(m[1], el), data, el);
      else charts[m[0]].setData(data);
    });
  }

  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (k) {
      var el = $("c-" + k);
      charts[k].setSize({ width: width(el), height: 190 });
    });
    if (hist) hist.setSize({ width: width($("c-hist")), height: 220 });
  });

  // ---- tables -------------------------------------------------------------
  // A drift row's verdict, with a column's unseen levels and missing share
  // (the user's own data), as the server renders it.
  function verdict(d) {
    var v = d.drifted ? "drifted" : "ok";
    if (d.unseen > 0) v += ", " + d.unseen + " unseen";
    if (d.missing > 0) v += ", " + Math.max(1, Math.round(d.missing * 100)) + "% missing";
    return v;
  }

  function drawDrift(s) {
    var body = document.querySelector("#drift tbody");
    if (!body) return;
    var html = s.drift.length ? s.drift.map(function (d) {
      return "<tr" + (d.drifted ? ' class="drifted"' : "") + '><th scope="row">' + esc(d.name) + "</th><td>" +
        pfmt(d.p_value) + (d.test === "chi2" ? " (χ²)" : "") + "</td><td>" + fmt(d.psi, 3) + "</td><td>" + fmt(d.wasserstein, 3) + "</td><td>" +
        verdict(d) + "</td></tr>";
    }).join("") : '<tr><td colspan="5">no windows yet</td></tr>';
    if (body.innerHTML !== html) body.innerHTML = html;
    var share = $("drift-share");
    if (share) share.textContent = s.drift_share === null || s.drift_share === undefined ?
      (s.no_features ? "(no features: the last window's features never reached the monitor, drift is not watched)" : "") :
      "(" + Math.round(s.drift_share * 100) + "% of features drifted)";
  }

  // The message without its opening "Alert <rule> <state>: " (as the server's page).
  function detail(e) {
    var opening = "Alert " + e.rule + " " + e.state + ": ";
    return e.message.indexOf(opening) === 0 ? e.message.slice(opening.length) : e.message;
  }

  function drawAlerts(s) {
    var active = $("active");
    if (active) active.innerHTML = s.active_alerts.length ?
      '<strong class="alert">' + s.active_alerts.map(esc).join(", ") + "</strong>" : "none";
    var list = $("events");
    if (!list) return;
    var html = s.events.length ? s.events.slice().reverse().map(function (e) {
      return '<li class="' + (e.state === "fired" ? "fired" : "resolved") + '"><strong>' + esc(e.rule) + "</strong> " +
        esc(e.state) + " (window " + Number(e.seq) + "): " + esc(detail(e)) + "</li>";
    }).join("") : '<li class="muted empty">no alert events yet</li>';
    if (list.innerHTML !== html) list.innerHTML = html;
  }

  function drawCounters(s) {
    var c = s.counters;
    set("rate", fmt(c.rate, 1));
    set("samples", String(c.samples));
    set("rows", String(c.rows));
    set("waiting", String(c.waiting));
    set("expired", String(c.expired));
    set("evicted", String(c.evicted));
    set("uptime", uptime(c.uptime_s));
    if (c.bridge) {
      set("bridge", c.bridge.connected ? "connected" : "not connected");
      set("buffered", String(c.bridge.buffered));
      set("resent", String(c.bridge.resent));
      set("bdropped", String(c.bridge.dropped));
    }
    c.inbound.forEach(function (q) { set("q:" + q.queue, q.delivered + " / " + q.acked); });
  }

  function onSnapshot(s) {
    if (s.baseline) baseline = s.baseline;
    s.windows.forEach(function (w) {
      if (w.seq <= lastSeq) return; // a reconnected stream repeats the history
      lastSeq = w.seq;
      xs.push(w.t); alerts.push(w.alert);
      metrics.forEach(function (m) { cols[m[0]].push(w[m[0]] === undefined ? null : w[m[0]]); });
    });
    if (xs.length > MAX_POINTS) {
      var cut = xs.length - MAX_POINTS;
      xs.splice(0, cut); alerts.splice(0, cut);
      metrics.forEach(function (m) { cols[m[0]].splice(0, cut); });
    }
    var nw = $("no-windows"), last = xs.length - 1;
    if (nw && last >= 0) nw.textContent = $("c-accuracy") ?
      "Window " + lastSeq + ": accuracy " + fmt(cols.accuracy[last], 3) + ", log loss " + fmt(cols.log_loss[last], 3) +
        ", ROC AUC " + fmt(cols.roc_auc[last], 3) + ", Brier " + fmt(cols.brier[last], 3) + "." :
      "Window " + lastSeq + ": MAE " + fmt(cols.mae[last], 2) + ", RMSE " +
        fmt(cols.rmse[last], 2) + ", R² " + fmt(cols.r2[last], 3) + ", bias " + fmt(cols.bias[last], 2) + ".";
    drawCounters(s);
    drawLines();
    drawHistogram(s.histogram);
    drawDrift(s);
    drawAlerts(s);
  }

  var live = $("live");
  if (!window.EventSource) { if (live) live.textContent = "(this browser has no EventSource: reload for new numbers)"; return; }
  var es = new EventSource("/events");
  es.addEventListener("snapshot", function (ev) {
    try { onSnapshot(JSON.parse(ev.data)); } catch (e) { if (live) live.textContent = "(bad update: " + e + ")"; return; }
    if (live) live.textContent = "(live)";
  });
  es.onerror = function () { if (live) live.textContent = "(reconnecting…)"; };
})();
