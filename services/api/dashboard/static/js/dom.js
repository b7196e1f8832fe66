// Building DOM nodes without innerHTML: every value the API sends lands as text, never as markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.setAttribute("class", value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "value" && "value" in el) {
      el.value = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** An HTML element: h("a", {href: "#/"}, "text", otherNode). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

/** A definition list of [term, value] pairs (values may be nodes). */
export function facts(pairs, attrs) {
  return h("dl", { class: "facts", ...attrs }, pairs.map(([term, value]) => [h("dt", null, term), h("dd", null, value)]));
}

/** A table: columns = [{label, cell: row => node|string, class?}], rows = data;
 * options.rowAttrs(row) gives each row's attributes, options.attrs the table's. */
export function table(columns, rows, options = {}) {
  const head = h("tr", null, columns.map((c) => h("th", { scope: "col", class: c.class }, c.label)));
  const body = rows.map((row) =>
    h("tr", options.rowAttrs ? options.rowAttrs(row) : null, columns.map((c) => h("td", { class: c.class }, c.cell(row)))),
  );
  return h("table", options.attrs, h("thead", null, head), h("tbody", null, body));
}
