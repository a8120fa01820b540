// DOM and formatting helpers shared by the panels. Elements are built with DOM calls (never innerHTML), so
// text from the API cannot inject markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? "" : String(v));
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined).map((c) => (c instanceof Node ? c : String(c))));
  return el;
}

export const num = (n) => (n === null || n === undefined ? "n/a" : Number(n).toLocaleString());
export const time = (iso) => (iso ? new Date(iso).toLocaleString() : "never");
export const utcDay = (day, opts = { month: "short", day: "numeric" }) =>
  new Date(`${day}T00:00:00Z`).toLocaleDateString(undefined, { ...opts, timeZone: "UTC" });
export const percent = (r, digits = 1) => (r === null || r === undefined ? "n/a" : `${(r * 100).toFixed(digits)} %`);
export const millis = (ms) => (ms === null || ms === undefined ? "n/a" : ms < 1000 ? `${Number(ms).toFixed(ms < 10 ? 1 : 0)} ms` : `${(ms / 1000).toFixed(1)} s`);
export function age(iso, now = Date.now()) {
  if (!iso) return "never";
  const s = Math.max(0, (now - new Date(iso).getTime()) / 1000);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
export function bytes(n) {
  if (n === null || n === undefined) return "n/a";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// kind: ok | warn | bad | muted, the colour of the figure against its threshold
export const tile = (label, value, note, kind) => h("div", { class: `tile${kind ? ` ${kind}` : ""}`, "data-grade": kind },
  h("div", { class: "tile-value" }, value), h("div", { class: "tile-label" }, label),
  note ? h("div", { class: "tile-note" }, note) : null);
export const badge = (text, kind) => h("span", { class: `badge ${kind}` }, text);
export const empty = (text) => h("p", { class: "muted empty" }, text);

export function table(headers, rows, attrs = {}) {
  return h("div", { class: "scroll" }, h("table", attrs,
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c)))))));
}

// The first rows of a longer list, then "and N more" with a link to the whole list.
export function more(shown, total, href, label = "the full list") {
  if (total <= shown) return null;
  return h("p", { class: "more" }, `and ${num(total - shown)} more · `,
    h("a", href.startsWith("#") ? { href } : { href, target: "_blank", rel: "noopener" }, label));
}

export function fill(id, ...content) {
  const panel = document.getElementById(id);
  panel.querySelector(".body").replaceChildren(...content.filter((c) => c !== null && c !== undefined));
  panel.dataset.state = "ready";
}
