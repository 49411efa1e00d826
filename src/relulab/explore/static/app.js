// relulab explore: the page. It draws what the server computes with relulab; it computes no activation itself.
"use strict";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c"];
const CLASS_COLORS = [[245, 158, 11], [37, 99, 235], [22, 163, 74]];
const LAYER_COLORS = ["#dc2626", "#2563eb", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

// What the tests (and a curious learner in the console) can read: the last numbers drawn.
const explore = window.explore = { curves: {}, sessions: {}, firstFrame: null, ready: false };

// -- server ------------------------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(message, field) { super(message); this.field = field; }
}

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const payload = response.status === 204 ? {} : await response.json();
  if (!response.ok) throw new ApiError(payload.error || response.statusText, payload.field);
  return payload;
}

// A field's text as the library should see it: a number when it reads as one, null for an empty optional
// field, otherwise the text itself (so the library's own message says what is wrong with it).
function fieldValue(text, allowNone) {
  const trimmed = String(text).trim();
  if (trimmed === "" && allowNone) return null;
  if (trimmed !== "" && Number.isFinite(Number(trimmed))) return Number(trimmed);
  return trimmed;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function fmt(value, digits = 4) {
  if (value === null || value === undefined) return "–";
  if (Number.isInteger(value)) return String(value);
  return Number(value.toPrecision(digits)).toString();
}

// -- a small canvas plot -------------------------------------------------------------------------------------
class Plot {
  constructor(canvas, { xlabel = "", ylabel = "" } = {}) {
    this.canvas = canvas;
    this.xlabel = xlabel;
    this.ylabel = ylabel;
    const ratio = window.devicePixelRatio || 1;
    this.w = canvas.width; this.h = canvas.height;
    canvas.style.width = this.w + "px"; canvas.style.height = this.h + "px";
    canvas.width = this.w * ratio; canvas.height = this.h * ratio;
    this.ctx = canvas.getContext("2d");
    this.ctx.scale(ratio, ratio);
    this.pad = { l: 46, r: 12, t: 10, b: 28 };
  }
  frame(x0, x1, y0, y1) {
    if (!(y1 > y0)) { y0 -= 0.5; y1 += 0.5; }
    if (!(x1 > x0)) { x1 = x0 + 1; }
    Object.assign(this, { x0, x1, y0, y1 });
    const { ctx, w, h, pad } = this;
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, w, h);
    ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#555"; ctx.strokeStyle = "#e5e7eb"; ctx.lineWidth = 1;
    for (const t of ticks(x0, x1, 8)) {
      const x = this.px(t);
      ctx.beginPath(); ctx.moveTo(x, pad.t); ctx.lineTo(x, h - pad.b); ctx.stroke();
      ctx.textAlign = "center"; ctx.fillText(fmt(t, 3), x, h - pad.b + 14);
    }
    for (const t of ticks(y0, y1, 6)) {
      const y = this.py(t);
      ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(w - pad.r, y); ctx.stroke();
      ctx.textAlign = "right"; ctx.fillText(fmt(t, 3), pad.l - 5, y + 4);
    }
    ctx.strokeStyle = "#9ca3af";
    if (y0 < 0 && y1 > 0) { ctx.beginPath(); ctx.moveTo(pad.l, this.py(0)); ctx.lineTo(w - pad.r, this.py(0)); ctx.stroke(); }
    if (x0 < 0 && x1 > 0) { ctx.beginPath(); ctx.moveTo(this.px(0), pad.t); ctx.lineTo(this.px(0), h - pad.b); ctx.stroke(); }
    ctx.strokeRect(pad.l, pad.t, w - pad.l - pad.r, h - pad.t - pad.b);
    if (this.xlabel) { ctx.textAlign = "right"; ctx.fillStyle = "#374151"; ctx.fillText(this.xlabel, w - pad.r, h - 2); }
  }
  px(x) { return this.pad.l + (x - this.x0) / (this.x1 - this.x0) * (this.w - this.pad.l - this.pad.r); }
  py(y) { return this.h - this.pad.b - (y - this.y0) / (this.y1 - this.y0) * (this.h - this.pad.t - this.pad.b); }
  // A line through (xs, ys); null values and jumps at the given x break it, so no false vertical segment is drawn.
  line(xs, ys, color, { width = 2, dash = [], breaks = [] } = {}) {
    const { ctx } = this;
    ctx.save();
    const { l, r, t, b } = this.pad;
    ctx.beginPath(); ctx.rect(l, t, this.w - l - r, this.h - t - b); ctx.clip();
    ctx.strokeStyle = color; ctx.lineWidth = width; ctx.setLineDash(dash); ctx.beginPath();
    let pen = false;
    for (let i = 0; i < xs.length; i++) {
      const y = ys[i];
      if (y === null || y === undefined || breaks.includes(xs[i])) { pen = false; continue; }
      const X = this.px(xs[i]), Y = Math.max(-1e4, Math.min(1e4, this.py(y)));
      if (pen) ctx.lineTo(X, Y); else ctx.moveTo(X, Y);
      pen = true;
    }
    ctx.stroke(); ctx.restore();
  }
  dot(x, y, color, { open = false, radius = 4.5 } = {}) {
    const { ctx } = this;
    ctx.beginPath(); ctx.arc(this.px(x), this.py(y), radius, 0, 2 * Math.PI);
    ctx.lineWidth = 2; ctx.strokeStyle = color; ctx.fillStyle = open ? "#fff" : color;
    ctx.fill(); ctx.stroke();
  }
  bar(x, ya, yb, color) {
    const { ctx } = this;
    ctx.save(); ctx.globalAlpha = 0.25; ctx.strokeStyle = color; ctx.lineWidth = 8; ctx.lineCap = "round";
    ctx.beginPath(); ctx.moveTo(this.px(x), this.py(ya)); ctx.lineTo(this.px(x), this.py(yb)); ctx.stroke(); ctx.restore();
  }
  vline(x, color) {
    const { ctx } = this;
    ctx.save(); ctx.strokeStyle = color; ctx.setLineDash([3, 4]); ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(this.px(x), this.pad.t); ctx.lineTo(this.px(x), this.h - this.pad.b); ctx.stroke(); ctx.restore();
  }
  text(x, y, text, color, dy = 0) {
    const { ctx } = this;
    ctx.fillStyle = color; ctx.font = "12px system-ui, sans-serif"; ctx.textAlign = "left";
    ctx.fillText(text, this.px(x) + 7, Math.max(this.pad.t + 12, this.py(y) - 7 + dy));
  }
  // The legend sits inside the top-left corner, or right of the frame (outside: the plot needs pad.r for it).
  legend(items, { outside = false } = {}) {
    const { ctx } = this;
    ctx.font = "12px system-ui, sans-serif"; ctx.textAlign = "left";
    const x = outside ? this.w - this.pad.r + 6 : this.pad.l + 8;
    items.forEach(([label, color], i) => {
      const y = this.pad.t + 14 + 16 * i;
      ctx.fillStyle = color; ctx.fillRect(x, y - 8, 14, 4);
      ctx.fillStyle = "#111"; ctx.fillText(label, x + 18, y - 2);
    });
  }
}

function ticks(a, b, count) {
  const step0 = (b - a) / count, mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 2.5, 5, 10].map(m => m * mag).find(s => s >= step0) || step0;
  const out = [];
  for (let t = Math.ceil(a / step) * step; t <= b + 1e-9; t += step) out.push(Math.abs(t) < 1e-12 ? 0 : t);
  return out;
}

// -- parameter fields generated from a member's spec ---------------------------------------------------------
// Each field keeps its text; values() hands the library what was typed, and showError() puts the library's
// message under the field it names.
class ParamFields {
  constructor(spec, onChange, prefix) {
    this.spec = spec; this.onChange = onChange; this.inputs = {}; this.errors = {};
    this.node = el("div", { class: "params" });
    for (const p of spec.params) this.node.append(this.field(p, prefix));
  }
  field(p, prefix) {
    const id = `${prefix}-${p.name}`;
    const wrap = el("div", { class: "param", "data-param": p.name });
    wrap.append(el("label", { for: id, title: p.doc, text: p.name }));
    let input;
    if (p.kind === "choice") {
      input = el("select", { id });
      for (const c of p.choices) input.append(el("option", { value: c, text: c }));
      input.value = p.default;
      input.addEventListener("change", () => this.onChange());
      wrap.append(input);
    } else if (p.kind === "bool") {
      input = el("input", { id, type: "checkbox" });
      input.checked = !!p.default;
      input.addEventListener("change", () => this.onChange());
      wrap.append(input);
    } else {
      input = el("input", { id, type: "text", value: p.default === null ? "" : String(p.default), size: 7,
                            spellcheck: "false" });
      input.addEventListener("change", () => this.onChange());
      input.addEventListener("keydown", e => { if (e.key === "Enter") this.onChange(); });
      if (p.kind === "real" && p.slider) {
        const [lo, hi] = p.slider;
        const slider = el("input", { id: id + "-slider", type: "range", min: lo, max: hi, step: (hi - lo) / 400,
                                     value: p.default });
        slider.addEventListener("input", () => { input.value = fmt(Number(slider.value), 4); this.onChange(); });
        input.addEventListener("change", () => { if (Number.isFinite(Number(input.value))) slider.value = input.value; });
        wrap.append(slider);
      }
      wrap.append(input);
    }
    wrap.append(el("div", { class: "allowed", text: p.allowed }));
    const error = el("div", { class: "error field-error", "data-error-for": p.name });
    wrap.append(error);
    this.inputs[p.name] = { p, input }; this.errors[p.name] = error;
    return wrap;
  }
  values() {
    const out = {};
    for (const [name, { p, input }] of Object.entries(this.inputs)) {
      if (p.kind === "bool") out[name] = input.checked;
      else if (p.kind === "choice") out[name] = input.value;
      else out[name] = fieldValue(input.value, p.allow_none);
      if (out[name] === p.default) delete out[name];
    }
    return out;
  }
  clearErrors() { for (const e of Object.values(this.errors)) { e.textContent = ""; e.parentNode.classList.remove("bad"); } }
  showError(field, message) {
    const target = this.errors[field];
    if (!target) return false;
    target.textContent = message; target.parentNode.classList.add("bad");
    return true;
  }
}

// -- Curves ---------------------------------------------------------------------------------------------------
const curves = { specs: {}, cards: [], fPlot: null, gPlot: null, range: [-4, 4] };

// [-4, 4], widened so every shown member's kinks lie inside with room on both sides (relu6 bends at 6).
function curveRange() {
  const kinks = curves.cards.flatMap(c => c.spec.properties.kinks);
  return [Math.min(-4, ...kinks.map(k => k - 2)), Math.max(4, ...kinks.map(k => k + 2))];
}

function updateRange() {
  const range = curveRange();
  if (range[0] === curves.range[0] && range[1] === curves.range[1]) return false;
  curves.range = range;
  for (const card of curves.cards) refreshCurve(card);
  return true;
}

function addMember(name) {
  const spec = curves.specs[name];
  if (!spec || curves.cards.some(c => c.spec.name === name) || curves.cards.length >= COLORS.length) return;
  const color = COLORS.find(c => !curves.cards.some(card => card.color === c));
  const card = { spec, color, atZero: null };
  const refresh = () => refreshCurve(card);
  card.fields = new ParamFields(spec, refresh, `c-${name}`);
  const remove = el("button", { class: "remove", title: "remove", text: "×", onclick: () => {
    curves.cards = curves.cards.filter(c => c !== card); card.node.remove(); delete explore.curves[name];
    if (!updateRange()) drawCurves();
  } });
  card.node = el("div", { class: "card", "data-member": name, style: `border-left-color:${color}` },
    el("div", { class: "card-head" }, el("strong", { text: name }), remove),
    el("div", { class: "summary", text: spec.summary }), card.fields.node);
  if (spec.has_kink_at_zero) {
    const id = `c-${name}-at_zero`;
    card.atInput = el("input", { id, type: "text", size: 7, value: "", placeholder: "default", spellcheck: "false" });
    card.atSlider = el("input", { id: id + "-slider", type: "range", min: 0, max: 1, step: 0.01, value: 0 });
    card.atError = el("div", { class: "error field-error", "data-error-for": "at_zero" });
    card.atSlider.addEventListener("input", () => { card.atInput.value = fmt(Number(card.atSlider.value), 3); refresh(); });
    card.atInput.addEventListener("change", refresh);
    const reset = el("button", { class: "small", text: "convention", title: "use relulab's default at the kink",
                                 onclick: () => { card.atInput.value = ""; refresh(); } });
    card.node.append(el("div", { class: "param", "data-param": "at_zero" },
      el("label", { for: id, text: "at_zero", title: "the value of f′(0) chosen from the subdifferential" }),
      card.atSlider, card.atInput, reset, el("div", { class: "allowed at-allowed", text: "" }), card.atError));
  }
  document.getElementById("member-cards").append(card.node);
  curves.cards.push(card);
  if (!updateRange()) refresh();
}

async function refreshCurve(card) {
  const [x_min, x_max] = curves.range;
  const body = { name: card.spec.name, params: card.fields.values(), x_min, x_max, points: 801 };
  if (card.atInput && card.atInput.value.trim() !== "") body.at_zero = fieldValue(card.atInput.value, true);
  // Requests can finish out of order (a slider drag sends many): only the latest one's answer is shown.
  const request = (card.requests = (card.requests || 0) + 1);
  card.fields.clearErrors();
  if (card.atError) { card.atError.textContent = ""; card.atError.parentNode.classList.remove("bad"); }
  card.node.classList.remove("bad");
  try {
    const result = await api("POST", "/api/curve", body);
    if (request !== card.requests) return;
    card.result = result;
    explore.curves[card.spec.name] = result;
    const kink = result.kinks.find(k => k.subdifferential);
    if (kink && card.atSlider) {
      const [lo, hi] = kink.subdifferential;
      card.atSlider.min = lo; card.atSlider.max = hi; card.atSlider.step = (hi - lo) / 100 || 0.01;
      card.atSlider.value = kink.at_zero;
      card.node.querySelector(".at-allowed").textContent =
        `in the subdifferential [${fmt(lo)}, ${fmt(hi)}]; relulab's default ${fmt(kink.grad)}`;
    }
    drawCurves();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (request !== card.requests) return;
    card.node.classList.add("bad");
    if (error.field === "at_zero" && card.atError) {
      card.atError.textContent = error.message; card.atError.parentNode.classList.add("bad");
    } else if (!card.fields.showError(error.field, error.message)) {
      const first = Object.keys(card.fields.errors)[0];
      if (!first || !card.fields.showError(first, error.message)) alert(error.message);
    }
  }
}

function drawCurves() {
  const drawn = curves.cards.filter(c => c.result);
  for (const [plot, key] of [[curves.fPlot, "f"], [curves.gPlot, "grad"]]) {
    let lo = Infinity, hi = -Infinity;
    for (const c of drawn) for (const v of c.result[key]) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (!drawn.length) { lo = -1; hi = 1; }
    lo = Math.max(lo, -10); hi = Math.min(hi, 10);
    const margin = 0.08 * (hi - lo || 1);
    plot.frame(curves.range[0], curves.range[1], lo - margin, hi + margin);
    for (const c of drawn) {
      const breaks = key === "grad" ? c.result.kinks.map(k => k.x) : [];
      plot.line(c.result.x, c.result[key], c.color, { breaks });
    }
    if (key === "grad") {
      // Open circles (the one-sided limits) first, then the values at the kinks, so no member's limit hides
      // another member's value where they coincide (relu's and leaky_relu's f' both tend to 1 from the right).
      for (const c of drawn) for (const k of c.result.kinks) {
        if (k.subdifferential) plot.bar(k.x, k.subdifferential[0], k.subdifferential[1], c.color);
        plot.vline(k.x, c.color);
        plot.dot(k.x, k.left, c.color, { open: true }); plot.dot(k.x, k.right, c.color, { open: true });
      }
      drawn.forEach((c, i) => { for (const k of c.result.kinks) {
        const value = k.at_zero !== null ? k.at_zero : k.grad;
        plot.dot(k.x, value, c.color);
        // members share kinks: each label gets its own line so none hides another
        plot.text(k.x, value, `${c.spec.name}′(${fmt(k.x)}) = ${fmt(value)}`, c.color, -16 * i);
      } });
    } else {
      for (const c of drawn) for (const k of c.result.kinks) plot.dot(k.x, k.f, c.color, { radius: 3 });
    }
    plot.legend(drawn.map(c => [c.spec.name, c.color]));
  }
  drawExample(drawn);
  if (drawn.length && explore.firstFrame === null) explore.firstFrame = performance.now();
}

function drawExample(drawn) {
  const table = document.getElementById("example");
  table.replaceChildren();
  const xs = drawn.length ? drawn[0].result.example.x : [-2, -1, 0, 1, 2];
  table.append(el("tr", {}, el("th", { text: "x" }), ...xs.map(x => el("td", { text: fmt(x) }))));
  for (const c of drawn) {
    table.append(el("tr", { "data-member": c.spec.name, "data-row": "f" },
      el("th", { style: `color:${c.color}`, text: `${c.spec.name}(x)` }),
      ...c.result.example.f.map(v => el("td", { text: fmt(v) }))));
    table.append(el("tr", { "data-member": c.spec.name, "data-row": "grad" },
      el("th", { style: `color:${c.color}`, text: `${c.spec.name}′(x)` }),
      ...c.result.example.grad.map(v => el("td", { text: fmt(v) }))));
  }
  const notes = document.getElementById("member-notes");
  notes.replaceChildren(...drawn.map(c => el("div", { class: "note" },
    el("h4", { style: `color:${c.color}`, text: c.spec.name }),
    el("div", {}, el("span", { class: "label", text: "f(x) = " }), el("code", { text: c.spec.formula })),
    el("div", {}, el("span", { class: "label", text: "f′(x) = " }), el("code", { text: c.spec.derivative_formula })),
    c.spec.conventions ? el("p", { text: "Conventions: " + c.spec.conventions }) : null,
    c.spec.use ? el("p", { text: "When to use: " + c.spec.use }) : null,
    c.spec.failure_mode ? el("p", { text: "Failure mode: " + c.spec.failure_mode }) : null)));
}

// -- Playground sessions --------------------------------------------------------------------------------------
// One Runner per session on the server: it polls the session's state (the poll is also the heartbeat that keeps
// the run alive; a closed tab stops polling and sends a beacon) and redraws what changed.
class Runner {
  constructor(root) {
    this.root = root; this.id = null; this.state = null; this.points = null;
  }
  async start(config) {
    const made = await api("POST", "/api/sessions", { config });
    this.id = made.id; explore.sessions[this.root.id || "runner"] = this;
    this.points = await api("GET", `/api/sessions/${this.id}/points`);
    this.show(made.state);
  }
  async command(action, extra = {}) {
    const result = await api("POST", `/api/sessions/${this.id}`, { action, ...extra });
    if (result.state.config.data !== (this.state && this.state.config.data)) {
      this.points = await api("GET", `/api/sessions/${this.id}/points`);
    }
    this.show(result.state);
    return result;
  }
  async poll() {
    if (!this.id) return;
    const since = this.state ? this.state.version : "";
    try {
      this.show(await api("GET", `/api/sessions/${this.id}?since=${since}`));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      this.id = null;  // the run ended on the server (idle too long): say so, stop polling it
      this.q(".status").textContent = error.message;
    }
  }
  show(state) {
    // a poll answered before a command's answer must not draw over it: versions only go up
    if (this.state && state.version < this.state.version) return;
    if (this.state && state.version === this.state.version && state.layers === undefined) {
      Object.assign(this.state, state);
    } else {
      this.state = state;
      this.draw();
    }
    this.drawStatus();
  }
  q(sel) { return this.root.querySelector(sel); }
  drawStatus() {
    const s = this.state, h = s.history, last = h.loss.length - 1;
    const dead = s.layers.reduce((n, l) => n + l.dead, 0), units = s.layers.reduce((n, l) => n + l.units, 0);
    const node = this.q(".status");
    node.dataset.status = s.status; node.dataset.epoch = s.epoch;
    node.textContent = `${s.activation} · epoch ${s.epoch} · loss ${fmt(h.loss[last])} · ` +
      `accuracy ${fmt(100 * h.accuracy[last], 3)}% (validation ${fmt(100 * h.val_accuracy[last], 3)}%) · ` +
      `dead units ${dead}/${units} · ${s.status}${s.message ? " — " + s.message : ""}`;
    node.append(el("div", { class: "hint", text: explain(s.layers) }));
  }
  draw() {
    const s = this.state, h = s.history;
    drawBoundary(this.q("canvas.boundary"), s.boundary, this.points);
    drawUnits(this.q(".units"), s.layers);
    const epochs = h.epoch, top = Math.max(0.1, ...h.loss.filter(v => v !== null).slice(-400));
    const x1 = Math.max(10, epochs[epochs.length - 1]);
    const loss = this.lossPlot || (this.lossPlot = new Plot(this.q("canvas.loss"), { xlabel: "epoch" }));
    loss.frame(0, x1, 0, Math.min(top * 1.05, 5));
    loss.line(epochs, h.loss, "#111827");
    const accCanvas = this.q("canvas.acc");
    if (accCanvas) {
      const acc = this.accPlot || (this.accPlot = new Plot(accCanvas, { xlabel: "epoch" }));
      acc.frame(0, x1, 0, 1);
      acc.line(epochs, h.accuracy, "#2563eb"); acc.line(epochs, h.val_accuracy, "#2563eb", { dash: [5, 4] });
    }
    const dead = this.deadPlot || (this.deadPlot = new Plot(this.q("canvas.dead"), { xlabel: "epoch" }));
    dead.pad.r = 72;  // room for the layers' legend: the lines reach 0 % and 100 %, where a legend inside would sit
    dead.frame(0, x1, 0, 100);
    s.layers.forEach((layer, i) => dead.line(epochs, h.dead.map(d => 100 * d[i]), LAYER_COLORS[i % LAYER_COLORS.length]));
    dead.legend(s.layers.map((l, i) => [`layer ${i + 1}`, LAYER_COLORS[i % LAYER_COLORS.length]]), { outside: true });
    const events = this.q(".events");
    if (events) events.replaceChildren(...s.events.slice(-8).map(e => el("li", { text: `epoch ${e.epoch}: ${e.what}` })));
  }
  close() {
    if (this.id) navigator.sendBeacon(`/api/sessions/${this.id}/close`);
    this.id = null;
  }
}

// What the cells mean right now, in words (the numbers are the monitor's).
function explain(layers) {
  const gone = layers.findIndex(l => l.units && l.dead === l.units);
  if (gone >= 0) {
    return `Every unit of layer ${gone + 1} is dead: it outputs 0 on every point, so the prediction no longer ` +
      "depends on the input and no gradient flows back through it. Training cannot bring it back: press " +
      "Revive, or Swap to leaky_relu.";
  }
  const dead = layers.reduce((n, l) => n + l.dead, 0), inactive = layers.reduce((n, l) => n + l.inactive - l.dead, 0);
  if (dead) return `${dead} dead unit${dead > 1 ? "s" : ""}: negative input on every point, output 0, gradient 0.`;
  if (inactive) return `${inactive} inactive unit${inactive > 1 ? "s" : ""}: negative input on every point, but ` +
    "this member still passes a small gradient, so they can recover.";
  return "Every unit is active on some points.";
}

function drawBoundary(canvas, boundary, points) {
  const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height, n = boundary.size, E = boundary.extent;
  const classes = points.classes;
  const image = ctx.createImageData(n, n);
  for (let i = 0; i < n * n; i++) {
    const [r, g, b] = CLASS_COLORS[boundary.class[i] % CLASS_COLORS.length];
    const strength = 0.15 + 0.55 * Math.max(0, (boundary.confidence[i] - 1 / classes) / (1 - 1 / classes));
    // the grid's first row is y = -E: the canvas draws it at the bottom
    const row = n - 1 - Math.floor(i / n), col = i % n, o = 4 * (row * n + col);
    image.data[o] = 255 - strength * (255 - r); image.data[o + 1] = 255 - strength * (255 - g);
    image.data[o + 2] = 255 - strength * (255 - b); image.data[o + 3] = 255;
  }
  const small = document.createElement("canvas");
  small.width = n; small.height = n; small.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true; ctx.drawImage(small, 0, 0, W, H);
  const X = x => (x + E) / (2 * E) * W, Y = y => H - (y + E) / (2 * E) * H;
  for (let i = 0; i < points.x.length; i++) {
    const [r, g, b] = CLASS_COLORS[points.y[i] % CLASS_COLORS.length];
    ctx.beginPath(); ctx.arc(X(points.x[i][0]), Y(points.x[i][1]), 2.6, 0, 2 * Math.PI);
    ctx.fillStyle = `rgb(${r},${g},${b})`; ctx.strokeStyle = "#fff"; ctx.lineWidth = 0.8; ctx.fill(); ctx.stroke();
  }
}

function drawUnits(root, layers) {
  root.replaceChildren(...layers.map((layer, i) => el("div", { class: "layer", "data-layer": i },
    el("div", { class: "layer-name", text: `layer ${i + 1}`, title: `${layer.name}: ${layer.kind}` }),
    ...layer.state.map((state, u) => {
      const cell = el("div", { class: `cell ${state}`, "data-state": state,
        title: state === "nan" ? `unit ${u}: its output was NaN`
          : `unit ${u}: ${state}, active on ${fmt(100 * layer.active_fraction[u], 3)}% of the points` });
      if (state === "alive") cell.style.opacity = String(0.45 + 0.55 * Math.min(1, 2 * layer.active_fraction[u]));
      return cell;
    }),
    el("div", { class: "layer-count", text: `${layer.dead} dead` }))));
}

// A side-by-side column's plots: the class names are the ones Runner.draw looks for.
function runnerMarkup() {
  const root = el("div", { class: "runner" });
  root.append(el("div", { class: "status" }),
    el("div", { class: "runner-plots" },
      el("figure", {}, el("figcaption", { text: "Decision boundary" }),
        el("canvas", { class: "boundary", width: 260, height: 260 })),
      el("figure", {}, el("figcaption", { text: "Hidden units" }), el("div", { class: "units" })),
      el("figure", {}, el("figcaption", { text: "Loss" }), el("canvas", { class: "loss", width: 300, height: 170 })),
      el("figure", {}, el("figcaption", { text: "Dead units per layer, %" }),
        el("canvas", { class: "dead", width: 300, height: 170 }))));
  return root;
}

// -- playground form ------------------------------------------------------------------------------------------
// The network's fields; activation parameters come from the member's spec, like the Curves view.
class ConfigForm {
  constructor(root, options, { activation = true, network = true, prefix, onChange }) {
    this.root = root; this.options = options; this.prefix = prefix; this.onChange = onChange; this.inputs = {};
    const d = options.defaults, L = options.limits;
    if (activation) this.activationBlock(root, d.activation);
    if (!network) return;
    this.select("data", options.toys, d.data, "2-D toy data set");
    this.text("depth", d.depth, `hidden layers, ${L.depth[0]}–${L.depth[1]}`);
    this.text("width", d.width, `units per hidden layer, ${L.width[0]}–${L.width[1]}`);
    this.select("init", options.inits, d.init, "he: relulab.nn.init_ · default: PyTorch's · xavier: Glorot");
    this.select("optimizer", options.optimizers, d.optimizer, "sgd: momentum 0.9");
    this.text("lr", d.lr, `learning rate in (0, ${options.lr_max}]; applies to the running network`);
    this.text("batch_size", d.batch_size, `${L.batch_size[0]}–${L.batch_size[1]}`);
    this.text("seed", d.seed, "the same seed: the same data order and initial weights");
  }
  activationBlock(root, name) {
    this.select("activation", this.options.activations, name, "the hidden layers' member");
    this.paramBox = el("div", { class: "activation-params" });
    root.append(this.paramBox);
    this.setParams(name);
  }
  setActivation(name) { this.inputs.activation.value = name; this.setParams(name); }
  setParams(name) {
    // the member's spec, cut to the parameters its relulab.nn module takes
    const spec = curves.specs[name], taken = this.options.module_params[name] || [];
    const moduleSpec = { ...spec, params: spec.params.filter(p => taken.includes(p.name)) };
    this.params = new ParamFields(moduleSpec, () => this.onChange("params"), `${this.prefix}-p`);
    this.paramBox.replaceChildren(this.params.node);
  }
  row(name, input, hint) {
    const error = el("div", { class: "error field-error", "data-error-for": name });
    this.root.append(el("div", { class: "param", "data-param": name },
      el("label", { for: input.id, text: name }), input, el("div", { class: "allowed", text: hint }), error));
    this.inputs[name] = input;
    input.addEventListener("change", () => {
      if (name === "activation") this.setParams(input.value);  // a new member starts from its own defaults
      this.onChange(name);
    });
    input.addEventListener("keydown", e => { if (e.key === "Enter" && input.tagName === "INPUT") input.blur(); });
  }
  select(name, choices, value, hint) {
    const input = el("select", { id: `${this.prefix}-${name}` });
    for (const c of choices) input.append(el("option", { value: c, text: c }));
    input.value = value;
    this.row(name, input, hint);
  }
  text(name, value, hint) {
    this.row(name, el("input", { id: `${this.prefix}-${name}`, type: "text", size: 8, value: String(value),
                                 spellcheck: "false" }), hint);
  }
  values() {
    const out = {};
    for (const [name, input] of Object.entries(this.inputs)) {
      out[name] = input.tagName === "SELECT" ? input.value : fieldValue(input.value, false);
    }
    if (this.params) out.params = this.params.values();
    return out;
  }
  clearErrors() {
    for (const e of this.root.querySelectorAll(".field-error")) { e.textContent = ""; e.parentNode.classList.remove("bad"); }
  }
  owns(field) { return field in this.inputs || (this.params && field in this.params.errors); }
  showError(error, fallback) {
    if (!(error instanceof ApiError)) throw error;
    const target = (this.params && this.params.showError(error.field, error.message)) ? null
      : this.root.querySelector(`.field-error[data-error-for="${error.field}"]`);
    if (target) { target.textContent = error.message; target.parentNode.classList.add("bad"); }
    else if (!this.params || !this.params.errors[error.field]) fallback.textContent = error.message;
  }
}

const playground = { runner: null, form: null };

async function initPlayground(options) {
  const root = document.getElementById("view-playground");
  const runner = playground.runner = new Runner(root.querySelector("#playground-runner"));
  const errorBox = document.getElementById("pg-error");
  const form = playground.form = new ConfigForm(document.getElementById("pg-fields"), options, {
    prefix: "pg", onChange: async (name) => {
      form.clearErrors(); errorBox.textContent = "";
      try {
        // lr changes the running network; every other field builds a new one (epoch 0)
        if (name === "lr") await runner.command("lr", { lr: form.values().lr });
        else await runner.command("reset", { config: form.values() });
      } catch (error) { form.showError(error, errorBox); }
    } });
  const swapTo = document.getElementById("pg-swap-to");
  for (const name of options.activations) swapTo.append(el("option", { value: name, text: name }));
  swapTo.value = "leaky_relu";
  const act = async (action, extra) => {
    form.clearErrors(); errorBox.textContent = "";
    try { return await runner.command(action, extra); } catch (error) { form.showError(error, errorBox); }
  };
  document.getElementById("pg-train").onclick = () => act("train");
  document.getElementById("pg-pause").onclick = () => act("pause");
  document.getElementById("pg-step").onclick = () => act("step");
  document.getElementById("pg-reset").onclick = () => act("reset", { config: form.values() });
  document.getElementById("pg-revive").onclick = () => act("revive");
  document.getElementById("pg-swap").onclick = async () => {
    const result = await act("swap", { activation: swapTo.value });
    if (result) form.setActivation(result.state.activation);
  };
  try { await runner.start(form.values()); } catch (error) { form.showError(error, errorBox); }
}

const side = { runners: [], forms: [] };

async function initSide(options) {
  const errorBox = document.getElementById("sb-error");
  // As in the Playground, lr changes the running networks; every other field builds both anew (epoch 0).
  const shared = new ConfigForm(document.getElementById("sb-fields"), options, {
    activation: false, prefix: "sb", onChange: name => name === "lr" ? setLr() : resetBoth() });
  side.shared = shared;
  const pairs = [["sb-a", "relu"], ["sb-b", "leaky_relu"]];
  for (const [id, name] of pairs) {
    const column = document.getElementById(id);
    const fields = el("div", { class: "fields" });
    column.append(fields);
    // only the activation and its parameters belong to a column; the rest is shared
    const form = new ConfigForm(fields, options, { network: false, prefix: id, onChange: () => resetBoth() });
    form.setActivation(name);
    const markup = runnerMarkup();
    column.append(markup);
    const runner = new Runner(markup);
    markup.id = `${id}-runner`;
    side.runners.push(runner); side.forms.push(form);
  }
  const config = i => ({ ...shared.values(), ...side.forms[i].values() });
  async function resetBoth() {
    shared.clearErrors(); errorBox.textContent = "";
    side.forms.forEach(f => f.clearErrors());
    for (let i = 0; i < 2; i++) {
      try { await side.runners[i].command("reset", { config: config(i) }); }
      catch (error) { (side.forms[i].owns(error.field) ? side.forms[i] : shared).showError(error, errorBox); }
    }
  }
  async function setLr() {
    shared.clearErrors(); errorBox.textContent = "";
    try { await Promise.all(side.runners.map(r => r.command("lr", { lr: shared.values().lr }))); }
    catch (error) { shared.showError(error, errorBox); }
  }
  const both = action => async () => {
    errorBox.textContent = "";
    try { await Promise.all(side.runners.map(r => r.command(action))); } catch (error) { shared.showError(error, errorBox); }
  };
  document.getElementById("sb-train").onclick = both("train");
  document.getElementById("sb-pause").onclick = both("pause");
  document.getElementById("sb-step").onclick = both("step");
  document.getElementById("sb-reset").onclick = resetBoth;
  for (let i = 0; i < 2; i++) await side.runners[i].start(config(i));
}

// -- the page -------------------------------------------------------------------------------------------------
const views = { playground: null, side: null };
let options = null;

async function showView(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === name);
  for (const view of document.querySelectorAll(".view")) view.classList.toggle("active", view.id === `view-${name}`);
  const init = { playground: initPlayground, side: initSide }[name];
  if (init && !views[name]) {
    views[name] = (async () => {
      try {
        options = options || await api("GET", "/api/options");
        await init(options);
      } catch (error) {  // e.g. no PyTorch: the server says what to install
        if (!(error instanceof ApiError)) throw error;
        document.getElementById(name === "side" ? "sb-error" : "pg-error").textContent = error.message;
        views[name] = null;
      }
    })();
  }
  if (views[name]) await views[name];
}

function runners() {
  return [playground.runner, ...side.runners].filter(r => r && r.id);
}

async function pollLoop() {
  // Every state request is also the session's heartbeat; a hidden tab polls slower but keeps its runs alive.
  const fast = () => runners().some(r => r.state && r.state.running);
  try {
    await Promise.all(runners().map(r => r.poll()));
  } catch (error) {
    if (!(error instanceof ApiError)) console.error(error);  // the server went away: keep trying
  }
  setTimeout(pollLoop, document.hidden ? 2000 : fast() ? 150 : 1000);
}

async function main() {
  curves.fPlot = new Plot(document.getElementById("plot-f"), { xlabel: "x" });
  curves.gPlot = new Plot(document.getElementById("plot-grad"), { xlabel: "x" });
  const { members } = await api("GET", "/api/members");
  const pick = document.getElementById("member-pick");
  for (const spec of members) {
    curves.specs[spec.name] = spec;
    pick.append(el("option", { value: spec.name, text: spec.name }));
  }
  pick.value = "leaky_relu";
  document.getElementById("member-add").onclick = () => addMember(pick.value);
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showView(tab.dataset.view));
  window.addEventListener("pagehide", () => runners().forEach(r => r.close()));
  addMember("relu");
  explore.ready = true;
  pollLoop();
  const wanted = location.hash.slice(1);
  if (views.hasOwnProperty(wanted)) showView(wanted);
}

main();
