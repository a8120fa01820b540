// Small SVG charts: horizontal bars and a multi-series line chart. Built with DOM calls (never
// innerHTML), so labels coming from the API cannot inject markup.

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// 1, 2 or 5 times a power of ten: gridlines at round numbers.
export function niceStep(max, ticks = 4) {
  if (!(max > 0)) return 1;
  const raw = max / ticks;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw);
  return Math.max(step, Number.isInteger(max) ? 1 : 0);
}

const fmt = (n) => n.toLocaleString();

// items: [{label, value}] → one labelled bar per item, scaled to the largest value.
export function barChart(items, { title = "", unit = "" } = {}) {
  const width = 360, row = 26, labelW = 120, valueW = 56;
  const height = Math.max(row, items.length * row);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart bar-chart", role: "img",
    "aria-label": title });
  const max = Math.max(1, ...items.map((i) => i.value));
  const span = width - labelW - valueW;
  items.forEach((item, i) => {
    const y = i * row;
    const w = Math.max(item.value > 0 ? 2 : 0, (item.value / max) * span);
    root.append(svg("text", { x: labelW - 6, y: y + row / 2, class: "label", "text-anchor": "end",
      "dominant-baseline": "middle" }, item.label));
    const bar = svg("rect", { x: labelW, y: y + 4, width: w.toFixed(1), height: row - 8, rx: 3,
      class: `bar s${i % 6}` });
    bar.append(svg("title", {}, `${item.label}: ${fmt(item.value)}${unit}`));
    root.append(bar);
    root.append(svg("text", { x: labelW + w + 6, y: y + row / 2, class: "value",
      "dominant-baseline": "middle" }, fmt(item.value) + unit));
  });
  return root;
}

// labels: x-axis labels; series: [{name, values}] with one value per label.
// width: the drawing's own width in px (the container's), so that text keeps its size on a phone.
export function lineChart(labels, series, { title = "", width = 640, height: fixed = null, series: first = 0 } = {}) {
  const peak = Math.max(0, ...series.flatMap((s) => s.values));
  const step = niceStep(peak);
  const max = Math.max(step, Math.ceil(peak / step) * step);
  // room for the widest y label (about 7 px a character at the axis font size)
  const left = 14 + 7 * fmt(max).length, right = 12, top = 12, bottom = 28;
  const height = fixed || Math.round(Math.min(240, Math.max(180, width * 0.4)));
  const plotW = width - left - right, plotH = height - top - bottom;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart line-chart", role: "img",
    "aria-label": title });
  const x = (i) => left + (labels.length > 1 ? (i / (labels.length - 1)) * plotW : plotW / 2);
  const y = (v) => top + plotH - (v / max) * plotH;

  for (let v = 0; v <= max; v += step) {
    root.append(svg("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "grid" }));
    root.append(svg("text", { x: left - 6, y: y(v), class: "axis", "text-anchor": "end",
      "dominant-baseline": "middle" }, fmt(v)));
  }
  // one x label per ~100 px
  const every = Math.max(1, Math.ceil(labels.length / Math.max(2, Math.floor(width / 100))));
  labels.forEach((label, i) => {
    const last = i === labels.length - 1;
    if (last || (i % every === 0 && labels.length - 1 - i >= every / 2)) {
      // the end labels lean inwards so that they are not clipped
      const anchor = i === 0 ? "start" : last ? "end" : "middle";
      root.append(svg("text", { x: x(i), y: height - 8, class: "axis", "text-anchor": anchor }, label));
    }
  });

  series.forEach((s, i) => {
    const k = i + first;  // colour index
    const d = s.values.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join("");
    if (k === 0) {
      // shade under the first series (the total)
      root.append(svg("path", { d: `${d}L${x(s.values.length - 1)},${y(0)}L${x(0)},${y(0)}Z`,
        class: "area s0" }));
    }
    root.append(svg("path", { d, class: `line s${k}` }));
    s.values.forEach((v, i) => {
      const dot = svg("circle", { cx: x(i), cy: y(v), r: k === 0 ? 3 : 2, class: `dot s${k}` });
      dot.append(svg("title", {}, `${labels[i]} · ${s.name}: ${fmt(v)}`));
      root.append(dot);
    });
  });
  return root;
}
