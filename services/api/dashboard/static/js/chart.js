// Line charts as plain SVG. Each series is told apart by its dash pattern and marker as well as
// its colour, and the legend names it, so the chart reads without colour too.

import { h, s } from "./dom.js";

export const STYLES = [
  { color: "#1f5fbf", dash: "", marker: "circle" },
  { color: "#c2410c", dash: "6 4", marker: "square" },
  { color: "#15803d", dash: "2 3", marker: "triangle" },
  { color: "#7e22ce", dash: "10 3 2 3", marker: "diamond" },
  { color: "#0f766e", dash: "1 2", marker: "circle" },
  { color: "#a16207", dash: "8 2", marker: "square" },
];

const W = 560;
const H = 240;
const PAD = { left: 56, right: 16, top: 12, bottom: 36 };

function niceTicks(min, max, count = 5) {
  if (min === max) {
    const d = Math.abs(min) || 1;
    return niceTicks(min - d / 2, max + d / 2, count);
  }
  const raw = (max - min) / count;
  const step = [1, 2, 2.5, 5, 10].map((m) => m * 10 ** Math.floor(Math.log10(raw))).find((v) => v >= raw);
  const ticks = [];
  for (let t = Math.floor(min / step) * step; t <= max + step * 1e-9; t += step) ticks.push(Number(t.toFixed(10)));
  if (ticks[ticks.length - 1] < max) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}

function marker(kind, x, y, color) {
  const r = 3.2;
  const attrs = { fill: color, stroke: color };
  if (kind === "square") return s("rect", { x: x - r, y: y - r, width: 2 * r, height: 2 * r, ...attrs });
  if (kind === "triangle") return s("polygon", { points: `${x},${y - r - 1} ${x - r},${y + r} ${x + r},${y + r}`, ...attrs });
  if (kind === "diamond") return s("polygon", { points: `${x},${y - r - 1} ${x + r + 1},${y} ${x},${y + r + 1} ${x - r - 1},${y}`, ...attrs });
  return s("circle", { cx: x, cy: y, r, ...attrs });
}

function fmt(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a < 0.001 || a >= 1e5)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

/**
 * series: [{name, points: [[x, y], ...], style?}]. Returns a <figure> holding the SVG, its
 * legend and a caption; `id` names it for tests (data-points on each series' path).
 */
export function lineChart({ id, title, xLabel, yLabel, series, empty = "No points yet." }) {
  const all = series.flatMap((line) => line.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const figure = h("figure", { class: "chart", id, "data-chart": id });
  figure.append(h("figcaption", null, title));
  if (!all.length) {
    figure.append(h("p", { class: "empty" }, empty));
    return figure;
  }
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
  const xTicks = niceTicks(x0, x1, 6).filter(Number.isInteger); // epochs: whole numbers
  const yTicks = niceTicks(Math.min(...ys), Math.max(...ys));
  const [y0, y1] = [yTicks[0], yTicks[yTicks.length - 1]];
  const px = (x) => PAD.left + ((x - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const py = (y) => H - PAD.bottom - ((y - y0) / (y1 - y0 || 1)) * (H - PAD.top - PAD.bottom);
  const summary = series
    .filter((line) => line.points.length)
    .map((line) => `${line.name}: ${line.points.length} points, last ${fmt(line.points[line.points.length - 1][1])}`)
    .join("; ");
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title}. ${summary}` });
  svg.append(s("title", null, title));
  const axes = s("g", { class: "axes" });
  for (const t of yTicks) {
    axes.append(s("line", { x1: PAD.left, x2: W - PAD.right, y1: py(t), y2: py(t), class: "grid" }));
    axes.append(s("text", { x: PAD.left - 6, y: py(t) + 4, "text-anchor": "end" }, fmt(t)));
  }
  for (const t of xTicks.filter((t) => t >= x0 && t <= x1)) {
    axes.append(s("line", { x1: px(t), x2: px(t), y1: H - PAD.bottom, y2: H - PAD.bottom + 4, class: "tick" }));
    axes.append(s("text", { x: px(t), y: H - PAD.bottom + 16, "text-anchor": "middle" }, fmt(t)));
  }
  axes.append(s("line", { x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom, class: "axis" }));
  axes.append(s("line", { x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: H - PAD.bottom, class: "axis" }));
  axes.append(s("text", { x: (PAD.left + W - PAD.right) / 2, y: H - 4, "text-anchor": "middle", class: "label" }, xLabel));
  axes.append(s("text", { x: 12, y: (PAD.top + H - PAD.bottom) / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${(PAD.top + H - PAD.bottom) / 2})`, class: "label" }, yLabel));
  svg.append(axes);
  series.forEach((line, index) => {
    const style = line.style || STYLES[index % STYLES.length];
    const points = line.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    const group = s("g", { class: "series", "data-series": line.name, "data-points": points.length });
    if (points.length > 1) {
      group.append(
        s("polyline", {
          points: points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" "),
          fill: "none",
          stroke: style.color,
          "stroke-width": 2,
          "stroke-dasharray": style.dash || null,
        }),
      );
    }
    const everyN = Math.max(1, Math.ceil(points.length / 40));
    points.forEach(([x, y], i) => {
      if (i % everyN === 0 || i === points.length - 1) {
        const m = marker(style.marker, px(x), py(y), style.color);
        m.append(s("title", null, `${line.name}: ${xLabel} ${fmt(x)}, ${fmt(y)}`));
        group.append(m);
      }
    });
    svg.append(group);
  });
  figure.append(svg);
  figure.append(legend(series));
  return figure;
}

export function legend(series) {
  return h(
    "ul",
    { class: "legend" },
    series.map((line, index) => {
      const style = line.style || STYLES[index % STYLES.length];
      const sample = s("svg", { width: 36, height: 12, "aria-hidden": "true" });
      sample.append(s("line", { x1: 0, x2: 36, y1: 6, y2: 6, stroke: style.color, "stroke-width": 2, "stroke-dasharray": style.dash || null }));
      sample.append(marker(style.marker, 18, 6, style.color));
      return h("li", null, sample, " ", line.name);
    }),
  );
}
