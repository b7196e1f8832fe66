// How values read on the page. An absent value is "—" (never 0, never blank).

export const ABSENT = "—";

export function present(value) {
  return value !== null && value !== undefined && !(typeof value === "number" && Number.isNaN(value));
}

export function num(value, digits = 3) {
  return present(value) && typeof value === "number" ? value.toFixed(digits) : ABSENT;
}

export function signed(value, digits = 3) {
  if (!present(value) || typeof value !== "number") return ABSENT;
  return (value >= 0 ? "+" : "") + value.toFixed(digits);
}

export function pct(value, digits = 0) {
  return present(value) && typeof value === "number" ? `${(value * 100).toFixed(digits)} %` : ABSENT;
}

export function interval(pair, digits = 3) {
  if (!Array.isArray(pair) || pair.length !== 2) return ABSENT;
  return `[${signed(pair[0], digits)}, ${signed(pair[1], digits)}]`;
}

/** 3725 → "1 h 02 min"; 65 → "1 min 05 s"; 4.2 → "4 s". */
export function seconds(value) {
  if (!present(value) || typeof value !== "number" || value < 0) return ABSENT;
  const s = Math.round(value);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  const h = Math.floor(s / 3600);
  return `${h} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** How long a training ran (or has been running); absent before it started. */
export function duration(training, now = Date.now()) {
  if (!training.started_at) return ABSENT;
  const end = training.finished_at ? Date.parse(training.finished_at) : now;
  return seconds((end - Date.parse(training.started_at)) / 1000);
}

export function when(iso) {
  if (!iso) return ABSENT;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? ABSENT : d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

export function shortId(id) {
  return id ? id.slice(0, 8) : ABSENT;
}

export function list(values) {
  return Array.isArray(values) && values.length ? values.join(", ") : ABSENT;
}

export function bytes(value) {
  if (!present(value)) return ABSENT;
  if (value < 1024) return `${value} B`;
  if (value < 1024 * 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${(value / 1024 / 1024).toFixed(1)} MiB`;
}

export function modelName(model) {
  if (!model) return ABSENT;
  return `${model.strategy}/${model.timeframe}_v${model.version}`;
}

/** Terminal statuses: the stream ends, nothing moves any more. */
export const TERMINAL = new Set(["completed", "failed", "cancelled"]);
export const TERMINAL_EVENTS = new Set(["Completed", "Failed", "Cancelled"]);

/** A status as a word with a symbol, so it reads without colour. */
export function statusBadge(h, status) {
  const symbols = {
    queued: "○", running: "▶", cancelling: "◌", completed: "✔", failed: "✖", cancelled: "■",
  };
  return h("span", { class: `status status-${status}`, "data-status": status }, `${symbols[status] || "?"} ${status}`);
}
