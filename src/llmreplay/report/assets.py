"""The page's static assets: its style sheet and the script that relabels time ticks after a zoom."""

from __future__ import annotations

CSS = """
:root { --ok:#1e8e3e; --bad:#c5221f; --muted:#666; --line:#e3e3e3; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #222;
       background: #fafafa; }
header { padding: 18px 24px 8px; background: #fff; border-bottom: 1px solid var(--line); }
h1 { font-size: 20px; margin: 0 0 4px; }
.meta { color: var(--muted); font-size: 13px; }
.verdict { display: flex; gap: 14px; align-items: center; margin: 14px 0 10px; padding: 12px 16px;
           border-radius: 8px; border: 1px solid; }
.verdict.met { background: #e6f4ea; border-color: #a8dab5; }
.verdict.missed { background: #fce8e6; border-color: #f5b7b1; }
.verdict.none { background: #f1f3f4; border-color: #dadce0; }
.badge { font-weight: 700; font-size: 15px; padding: 4px 10px; border-radius: 4px; color: #fff;
         white-space: nowrap; }
.met .badge { background: var(--ok); } .missed .badge { background: var(--bad); } .none .badge { background: #777; }
.verdict .head { font-weight: 600; font-size: 16px; } .verdict .detail { font-size: 13px; color: #333; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 8px; margin: 6px 0 8px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.card .k { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.card .big { font-size: 17px; font-weight: 600; margin-top: 2px; white-space: nowrap; }
.splits { display: flex; flex-wrap: wrap; gap: 6px 16px; margin-top: 6px; font-size: 13px; }
.split b { font-variant-numeric: tabular-nums; }
.misses { font-size: 13px; margin-top: 6px; } .misses ul { margin: 2px 0 0 18px; padding: 0; }
.misses a.window { color: inherit; } .toolbar select { font: inherit; }
.toolbar .highlight { color: #8a6d00; }
.card .sub { font-size: 12px; color: var(--muted); margin-top: 2px; }
.v.ok { color: var(--ok); } .v.bad { color: var(--bad); }
.toolbar { position: sticky; top: 0; z-index: 10; background: rgba(255,255,255,.95); border-bottom: 1px solid
           var(--line); padding: 6px 24px; font-size: 13px; display: flex; gap: 14px; align-items: center; }
.toolbar button { white-space: nowrap; font: inherit; padding: 3px 10px; border: 1px solid #bbb; border-radius: 4px;
                  background: #fff;
                  cursor: pointer; }
.toolbar button:hover { background: #f1f3f4; }
.toolbar .range { color: var(--muted); font-variant-numeric: tabular-nums; white-space: nowrap; }
.toolbar label { white-space: nowrap; }
section { background: #fff; margin: 0; padding: 4px 12px 8px; }
section h2 { font-size: 15px; margin: 14px 12px 0; }
.hint { color: var(--muted); font-size: 12px; margin: 2px 12px 0; }
footer { color: var(--muted); font-size: 12px; padding: 10px 24px 24px; }
"""

#: relabels the elapsed-time ticks (m:ss / h:mm:ss) of every time axis after a zoom, pan or reset; keeps the
#: toolbar's range text; TIME_STEPS and the label format mirror time_ticks() / format_elapsed()
SCRIPT = """
(function () {
  var gd = document.getElementById(%(div)s);
  var steps = %(steps)s, maxTicks = %(max_ticks)d, axes = %(axes)s;
  function fmt(s, step) {
    var neg = s < 0; s = Math.abs(s);
    var dec = step < 1 ? Math.min(3, Math.max(1, Math.ceil(-Math.log10(step) - 1e-9))) : 0;
    var p = Math.pow(10, dec), tot = Math.round(s * p) / p;
    var h = Math.floor(tot / 3600), m = Math.floor((tot - h * 3600) / 60), sec = tot - h * 3600 - m * 60;
    var st = dec ? sec.toFixed(dec) : String(Math.round(sec));
    var w = dec ? 3 + dec : 2; while (st.length < w) st = '0' + st;
    var out = h ? h + ':' + (m < 10 ? '0' : '') + m + ':' + st : m + ':' + st;
    return neg ? '-' + out : out;
  }
  function ticks(r) {
    var span = Math.max(r[1] - r[0], 1e-9), step = steps[steps.length - 1];
    for (var i = 0; i < steps.length; i++) { if (span / steps[i] <= maxTicks) { step = steps[i]; break; } }
    var vals = [], text = [];
    for (var k = Math.ceil(r[0] / step - 1e-9); k * step <= r[1] + 1e-9 && vals.length < 10 * maxTicks; k++) {
      var v = Math.round(k * step * 1e6) / 1e6; vals.push(v); text.push(fmt(v, step));
    }
    return [vals, text];
  }
  var label = document.getElementById('llmreplay-range');
  function showRange(r) {
    if (label) { label.textContent = 'showing ' + fmt(Math.max(r[0], 0), 1) + ' – ' + fmt(r[1], 1); }
  }
  function relabel() {
    var r = gd._fullLayout.xaxis.range.map(Number), t = ticks(r), upd = {};
    axes.forEach(function (a) { upd[a + '.tickvals'] = t[0]; upd[a + '.ticktext'] = t[1]; });
    showRange(r);
    return Plotly.relayout(gd, upd);
  }
  gd.on('plotly_relayout', function (ev) {
    if (Object.keys(ev).some(function (k) { return k.indexOf('range') >= 0 || k.indexOf('autorange') >= 0; })) {
      relabel();
    }
  });
  var reset = document.getElementById('llmreplay-reset');
  if (reset) {
    reset.addEventListener('click', function () {
      Plotly.relayout(gd, {'xaxis.range': [0, %(end)s], 'xaxis.autorange': false});
    });
  }
  var state = {gd: gd, relabel: relabel, format: fmt, highlighted: null, intervalS: null};
  // a click on a planner decision highlights its interval (the ticks it looked at) in every linked chart
  var note = document.getElementById('llmreplay-highlight');
  gd.on('plotly_click', function (ev) {
    var pt = ev.points && ev.points[0];
    if (!pt || !pt.data.meta || !pt.data.meta.decision) { return; }
    var t = Number(pt.x), w = Number(pt.data.meta.interval_s) || 0;
    var x0 = Math.max(0, t - w), x1 = Math.max(t, x0 + 1e-3);
    state.highlighted = [x0, x1];
    if (note) { note.textContent = 'highlighted ' + fmt(x0, 1) + '–' + fmt(x1, 1) + ': ' + pt.data.name; }
    Plotly.relayout(gd, {shapes: [{type: 'rect', xref: 'x', yref: 'paper', x0: x0, x1: x1, y0: 0, y1: 1,
                                   fillcolor: 'rgba(255, 193, 7, 0.22)', line: {width: 0}, layer: 'below'}]});
  });
  // the verdict's windows zoom every chart to where the misses happened
  document.querySelectorAll('#llmreplay-misses a.window').forEach(function (a) {
    a.addEventListener('click', function (ev) {
      ev.preventDefault();
      var s = Number(a.dataset.start), e = Number(a.dataset.end), pad = (e - s) * 0.5;
      Plotly.relayout(gd, {'xaxis.range': [Math.max(0, s - pad), e + pad], 'xaxis.autorange': false});
    });
  });
  // the interval control merges k report intervals into one, with each average weighted by its requests
  var bins = %(bins)s, select = document.getElementById('llmreplay-interval');
  function merged(key, k) {
    var vals = bins.series[key], wts = bins.weights[key] ? bins.series[bins.weights[key]] : null;
    var n = bins.t_s.length, out = [];
    for (var j = 0; j * k < n; j++) {
      var num = 0, den = 0, hi = Math.min(n, (j + 1) * k);
      for (var b = j * k; b < hi; b++) {
        if (key === 'arrival_rps') { num += (vals[b] || 0) * bins.bin_s; den += bins.bin_s; continue; }
        if (vals[b] === null || vals[b] === undefined) { continue; }
        var wt = wts ? (wts[b] || 0) : 1; num += vals[b] * wt; den += wt;
      }
      out.push(den > 0 ? num / den : null);
    }
    return out;
  }
  function setInterval_(k) {
    if (!bins) { return; }
    var w = bins.bin_s * k, idx = [], upd = {x: [], y: [], text: [], width: [], 'marker.color': []};
    gd.data.forEach(function (tr, i) {
      var key = tr.meta && tr.meta.series;
      if (!key || !bins.series[key]) { return; }
      var ys = merged(key, k), xs = [], yy = [], colours = [];
      ys.forEach(function (v, j) {
        var x = bins.t_s[0] + j * w;
        if (tr.type === 'bar') {
          if (v !== null) {
            xs.push(x + w / 2); yy.push(v); colours.push(v >= bins.goal - 1e-12 ? bins.good : bins.bad);
          }
        } else if (v !== null) {
          xs.push(Math.max(0, x), x + w); yy.push(v, v);
          if (j + 1 < ys.length && ys[j + 1] === null) { xs.push(x + w); yy.push(null); }
        }
      });
      idx.push(i); upd.x.push(xs); upd.y.push(yy);
      upd.text.push(xs.map(function (x) { return fmt(x, 1); }));
      upd.width.push(tr.type === 'bar' ? w : undefined);
      upd['marker.color'].push(tr.type === 'bar' ? colours : (tr.marker || {}).color);
    });
    state.intervalS = w;
    if (idx.length) { Plotly.restyle(gd, upd, idx); }
  }
  if (select) {
    select.addEventListener('change', function () { setInterval_(Number(select.value)); });
    state.intervalS = bins ? bins.bin_s : null;
  }
  state.setInterval = setInterval_;
  // the ticks of the initial range come with the figure: no relayout needed at load
  showRange(gd._fullLayout.xaxis.range.map(Number));
  window.llmreplayReport = state;
})();
"""
