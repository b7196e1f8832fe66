// Comparing trainings: their curves overlaid, a table of the settings that differ, their figures
// side by side.

import { api, eventLog } from "../api.js";
import { STYLES, lineChart } from "../chart.js";
import { clear, h } from "../dom.js";
import { ABSENT, duration, list, modelName, num, shortId, statusBadge } from "../format.js";
import { verdictWord } from "./trainings.js";
import { emptyState, problem } from "./common.js";

/** A nested object as {"a.b.c": value} (lists stay whole: they compare as one value). */
export function flatten(value, prefix = "", out = {}) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) flatten(inner, prefix ? `${prefix}.${key}` : key, out);
  } else {
    out[prefix] = value;
  }
  return out;
}

function show(value) {
  if (value === undefined || value === null) return ABSENT;
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** The request settings of each training (from its TrainingRequested): {setting: value}. */
function settingsOf(requested) {
  if (!requested) return {};
  return {
    strategy: requested.strategy_name,
    symbols: requested.symbols,
    timeframes: requested.timeframes,
    start_date: requested.start_date,
    end_date: requested.end_date,
    device: requested.device,
    seed: requested.seed,
    ...flatten(requested.overrides || {}, "overrides"),
    ...flatten(requested.strategy || {}, "strategy"),
  };
}

export function differences(settingsList) {
  const keys = [...new Set(settingsList.flatMap((s) => Object.keys(s)))].sort();
  return keys.filter((key) => new Set(settingsList.map((s) => JSON.stringify(s[key] ?? null))).size > 1);
}

export function render(root, [idsPart], ctx) {
  const ids = (idsPart || "").split(",").map((x) => x.trim()).filter(Boolean);
  root.append(h("h1", null, "Compare trainings"));
  if (ids.length < 2) {
    root.append(
      emptyState("Select two or more trainings in the list (the check boxes), then “Compare selected”."),
      h("p", null, h("a", { href: "#/trainings" }, "Go to the trainings")),
    );
    return null;
  }
  const body = h("div", { id: "compare" }, h("p", { class: "help" }, `Loading ${ids.length} trainings…`));
  root.append(body);
  const controller = new AbortController();
  (async () => {
    let loaded;
    try {
      loaded = await Promise.all(
        ids.map(async (id) => {
          const [training, events] = await Promise.all([
            api(`/trainings/${encodeURIComponent(id)}`, { signal: controller.signal }),
            eventLog(id, { signal: controller.signal }),
          ]);
          return { id, training, events };
        }),
      );
    } catch (error) {
      if (error.name !== "AbortError") clear(body).append(problem(error));
      return;
    }
    clear(body).append(...view(loaded));
  })();
  return () => controller.abort();
}

function curves(run) {
  const byEpoch = new Map();
  let attempt = 0;
  for (const e of run.events) {
    if (e.type === "Started" && e.attempt > attempt) {
      attempt = e.attempt;
      byEpoch.clear();
    }
    if (e.type === "EpochCompleted" && e.attempt >= attempt) byEpoch.set(e.epoch, e);
  }
  return [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
}

function view(runs) {
  const label = (run) => `${shortId(run.id)} ${run.training.strategy || ""}`.trim();
  const epochs = runs.map(curves);
  const series = (field) =>
    runs.map((run, i) => ({ name: label(run), points: epochs[i].map((e) => [e.epoch, e[field]]), style: STYLES[i % STYLES.length] }));
  const settings = runs.map((run) => settingsOf(run.events.find((e) => e.type === "TrainingRequested")));
  const differing = differences(settings);
  const metric = (name, pick) => [name, runs.map((run) => pick(run.training))];
  const metrics = [
    metric("Status", (t) => statusBadge(h, t.status)),
    metric("Epochs run", (t) => (t.epoch ? `${t.epoch} of ${t.total_epochs}` : ABSENT)),
    metric("Best val loss", (t) => num(t.best_metrics && t.best_metrics.val_loss, 4)),
    metric("Best epoch", (t) => (t.best_metrics && t.best_metrics.epoch) ?? ABSENT),
    metric("Val accuracy at best", (t) => num(t.best_metrics && t.best_metrics.val_accuracy)),
    metric("Test accuracy", (t) => num(t.test_metrics && t.test_metrics.accuracy)),
    metric("Test macro F1", (t) => num(t.test_metrics && t.test_metrics.macro_f1)),
    metric("Test Sharpe", (t) => num(t.test_metrics && t.test_metrics.trading && t.test_metrics.trading.sharpe, 2)),
    metric("Verdict", (t) => verdictWord(t)),
    metric("Duration", (t) => duration(t)),
    metric("Model", (t) => modelName(t.model)),
  ];
  const head = h("thead", null, h("tr", null, h("th", { scope: "col" }, ""), runs.map((run) => h("th", { scope: "col" }, h("a", { href: `#/trainings/${run.id}` }, label(run))))));
  return [
    h(
      "div",
      { class: "charts" },
      lineChart({ id: "compare-val-loss", title: "Validation loss by epoch", xLabel: "epoch", yLabel: "val loss", series: series("val_loss") }),
      lineChart({ id: "compare-train-loss", title: "Train loss by epoch", xLabel: "epoch", yLabel: "train loss", series: series("train_loss") }),
      lineChart({ id: "compare-val-accuracy", title: "Validation accuracy by epoch", xLabel: "epoch", yLabel: "val accuracy", series: series("val_accuracy") }),
    ),
    h("h2", null, "Figures"),
    h("div", { class: "scroll" }, h("table", { id: "compare-metrics" }, head.cloneNode(true), h("tbody", null, metrics.map(([name, cells]) => h("tr", null, h("th", { scope: "row" }, name), cells.map((c) => h("td", null, c))))))),
    h("h2", null, "Settings that differ"),
    differing.length
      ? h(
          "div",
          { class: "scroll" },
          h(
            "table",
            { id: "compare-differences" },
            head.cloneNode(true),
            h("tbody", null, differing.map((key) => h("tr", { "data-setting": key }, h("th", { scope: "row" }, key), settings.map((s) => h("td", null, show(s[key])))))),
          ),
        )
      : emptyState("These trainings were requested with the same settings."),
    h("p", { class: "help" }, `Symbols compared: ${runs.map((run) => list(run.training.symbols)).join(" · ")}`),
  ];
}
