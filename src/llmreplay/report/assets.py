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
.card .big { font-size: 17px; font-weight: 600; margin-top: 2px; }
.card .sub { font-size: 12px; color: var(--muted); margin-top: 2px; }
.v.ok { color: var(--ok); } .v.bad { color: var(--bad); }
.toolbar { position: sticky; top: 0; z-index: 10; background: rgba(255,255,255,.95); border-bottom: 1px solid
           var(--line); padding: 6px 24px; font-size: 13px; display: flex; gap: 14px; align-items: center; }
.toolbar button { font: inherit; padding: 3px 10px; border: 1px solid #bbb; border-radius: 4px; background: #fff;
                  cursor: pointer; }
.toolbar button:hover { background: #f1f3f4; }
.toolbar .range { color: var(--muted); font-variant-numeric: tabular-nums; }
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
  // the ticks of the initial range come with the figure: no relayout needed at load
  showRange(gd._fullLayout.xaxis.range.map(Number));
  window.llmreplayReport = {gd: gd, relabel: relabel, format: fmt};
})();
"""
