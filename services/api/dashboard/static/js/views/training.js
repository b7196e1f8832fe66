// One training: progress with ETA, live loss and accuracy curves from the SSE stream (resumed
// after a dropped connection with no gap), the event log with the state as of any event, a
// cancel button, and once complete the test figures and the model.

import { api } from "../api.js";
import { lineChart } from "../chart.js";
import { append, clear, facts, h, table } from "../dom.js";
import {
  ABSENT,
  TERMINAL,
  bytes,
  duration,
  interval,
  list,
  modelName,
  num,
  pct,
  seconds,
  signed,
  statusBadge,
  when,
} from "../format.js";
import { follow } from "../stream.js";
import { problem } from "./common.js";

const PHASES = 11;
const LOG_ROWS = 1000; // the page shows the newest ones; the whole log is one link away

/** What the page says about one event (the CLI's `ktrdr tail` says the same things). */
export function summary(e) {
  switch (e.type) {
    case "TrainingRequested":
      return `requested ${e.strategy_name} on ${list(e.symbols)} ${list(e.timeframes)} (device ${e.device}, seed ${e.seed})`;
    case "CancelRequested":
      return `cancel requested: ${e.reason}`;
    case "Started":
      return `started on ${e.trainer_id} (${e.device ? e.device.type : "?"}), attempt ${e.attempt}`;
    case "PhaseStarted":
      return `phase ${e.index + 1}/${e.total_phases}: ${e.phase}${e.message ? ` (${e.message})` : ""}`;
    case "BatchProgress":
      return `epoch ${e.epoch}/${e.total_epochs} batch ${e.batch}/${e.total_batches} · running loss ${num(e.running_loss, 4)}`;
    case "EpochCompleted":
      return `epoch ${e.epoch}/${e.total_epochs}: train loss ${num(e.train_loss, 4)} acc ${num(e.train_accuracy)} | val loss ${num(e.val_loss, 4)} acc ${num(e.val_accuracy)} (best epoch ${e.best_epoch})`;
    case "Completed":
      return `completed in ${seconds(e.duration_s)}: model ${modelName(e.model)}`;
    case "Failed":
      return `failed${e.phase ? ` in ${e.phase}` : ""}: ${e.error_type}: ${e.message}`;
    case "Cancelled":
      return `cancelled${e.phase ? ` in ${e.phase}` : ""}${e.epoch ? ` at epoch ${e.epoch}` : ""}: ${e.reason}`;
    default:
      return e.type;
  }
}

/** The read model's progress fields after one more event (the page's own small fold). */
export function applyEvent(t, e) {
  const next = { ...t, position: e.position };
  switch (e.type) {
    case "Started":
      Object.assign(next, { status: t.status === "cancelling" ? "cancelling" : "running", trainer_id: e.trainer_id, attempt: e.attempt, started_at: t.started_at || e.occurred_at });
      break;
    case "CancelRequested":
      if (!TERMINAL.has(t.status)) next.status = "cancelling";
      break;
    case "PhaseStarted":
      Object.assign(next, { phase: e.phase, phase_index: e.index });
      break;
    case "BatchProgress":
      Object.assign(next, { epoch: e.epoch, total_epochs: e.total_epochs, batch: e.batch, total_batches: e.total_batches, progress: e.progress, eta_s: e.eta_s ?? null });
      break;
    case "EpochCompleted":
      Object.assign(next, { epoch: e.epoch, total_epochs: e.total_epochs });
      break;
    case "Completed":
      next.status = "completed";
      break;
    case "Failed":
      next.status = t.cancel_requested || t.status === "cancelling" ? "cancelled" : "failed";
      break;
    case "Cancelled":
      next.status = "cancelled";
      break;
    default:
      break;
  }
  return next;
}

export function render(root, [trainingId], ctx) {
  let stream = null;
  let stopped = false;
  let training = null;
  const epochs = new Map(); // epoch -> EpochCompleted (the newest attempt's)
  let attempt = 0;

  const header = h("div", { class: "title-row" });
  const progressArea = h("section", { class: "panel", id: "progress", "aria-labelledby": "progress-h" });
  const streamState = h("p", { id: "stream-state", class: "stream-state", role: "status", "data-state": "connecting" }, "Connecting to the live stream…");
  const charts = h("div", { class: "charts", id: "charts" });
  const results = h("div", { id: "results" });
  const logBody = h("tbody");
  const logCount = h("p", { class: "help", id: "log-count" });
  const asOf = h("div", { id: "as-of", "aria-live": "polite" });
  const cancelButton = h("button", { type: "button", id: "cancel", class: "danger" }, "Cancel training");
  const cancelMessage = h("p", { id: "cancel-message", role: "status" });

  const warnings = JSON.parse(sessionStorage.getItem(`ktrdr.warnings.${trainingId}`) || "[]");
  append(root, [
    h("p", null, h("a", { href: "#/trainings" }, "← All trainings")),
    header,
    warnings.length
      ? h("div", { class: "panel", id: "warnings", role: "status" }, h("h2", null, "Accepted, with warnings"), h("ul", null, warnings.map((w) => h("li", null, w))))
      : null,
    progressArea,
    h("section", { class: "panel", "aria-labelledby": "curves-h" }, h("h2", { id: "curves-h" }, "Curves"), streamState, charts),
    results,
    h(
      "section",
      { class: "panel", "aria-labelledby": "log-h" },
      h("h2", { id: "log-h" }, "Event log"),
      h("p", { class: "help" }, "Every event of this training, as the service recorded it. “As of” shows the training as it stood right after that event."),
      logCount,
      asOf,
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { class: "log", id: "event-log" },
          h("thead", null, h("tr", null, ["Position", "Time", "Type", "What happened", ""].map((c) => h("th", { scope: "col" }, c)))),
          logBody,
        ),
      ),
    ),
  ]);

  cancelButton.addEventListener("click", async () => {
    cancelButton.disabled = true;
    cancelMessage.textContent = "Asking the service to cancel…";
    try {
      const answer = await api(`/trainings/${encodeURIComponent(trainingId)}/cancel`, { method: "POST", body: { reason: "cancelled from the dashboard" } });
      cancelMessage.textContent = `Cancel requested: the training is ${answer.status}. It stops at the next batch.`;
    } catch (error) {
      cancelMessage.textContent = error.message;
      cancelButton.disabled = false;
    }
  });

  function drawHeader() {
    clear(header).append(
      h("h1", null, "Training ", h("code", { title: trainingId }, trainingId.slice(0, 8))),
      h("span", { id: "training-status", class: "big-status" }, statusBadge(h, training.status)),
    );
  }

  function drawProgress() {
    const t = training;
    const terminal = TERMINAL.has(t.status);
    cancelButton.hidden = terminal;
    cancelButton.disabled = terminal || t.status === "cancelling" || t.cancel_requested;
    const phaseText = t.phase ? `${t.phase} (${(t.phase_index ?? 0) + 1} of ${PHASES})` : ABSENT;
    const epochText = t.epoch ? `${t.epoch} of ${t.total_epochs ?? ABSENT}` : ABSENT;
    const batchText = !terminal && t.batch ? `${t.batch} of ${t.total_batches ?? ABSENT}` : ABSENT;
    const eta = terminal || t.eta_s === null || t.eta_s === undefined ? ABSENT : seconds(t.eta_s);
    const progress = t.progress ?? (t.status === "completed" ? 1 : null);
    append(clear(progressArea), [
      h("h2", { id: "progress-h" }, "Progress"),
      facts(
        [
          ["Status", statusBadge(h, t.status)],
          ["Strategy", t.strategy || ABSENT],
          ["Symbols", list(t.symbols)],
          ["Timeframes", list(t.timeframes)],
          ["Phase", h("span", { id: "phase" }, phaseText)],
          ["Epoch", h("span", { id: "epoch" }, epochText)],
          ["Batch", h("span", { id: "batch" }, batchText)],
          ["Training progress", h("span", null, progress === null ? ABSENT : h("progress", { id: "progress-bar", max: 1, value: progress }), " ", h("span", { id: "progress-pct" }, pct(progress)))],
          ["ETA", h("span", { id: "eta" }, eta)],
          ["Duration", duration(t)],
          ["Device", t.device ? `${t.device.type} (${t.device.name})` : t.device_requested || ABSENT],
          ["Trainer", t.trainer_id || ABSENT],
          ["Requested", when(t.requested_at)],
          ["Attempt", t.attempt || ABSENT],
        ],
        { id: "progress-facts" },
      ),
      t.error ? h("p", { class: "problem", role: "alert" }, `${t.error.error_type || "error"}: ${t.error.message || ""}`) : null,
      h("div", { class: "toolbar" }, cancelButton, cancelMessage),
    ]);
  }

  function drawCharts() {
    const rows = [...epochs.values()].sort((a, b) => a.epoch - b.epoch);
    const series = (field) => rows.map((e) => [e.epoch, e[field]]);
    clear(charts).append(
      lineChart({
        id: "loss-chart",
        title: "Loss by epoch",
        xLabel: "epoch",
        yLabel: "loss",
        series: [
          { name: "train loss", points: series("train_loss") },
          { name: "validation loss", points: series("val_loss") },
        ],
        empty: "The loss curve starts after the first epoch.",
      }),
      lineChart({
        id: "accuracy-chart",
        title: "Accuracy by epoch",
        xLabel: "epoch",
        yLabel: "accuracy",
        series: [
          { name: "train accuracy", points: series("train_accuracy") },
          { name: "validation accuracy", points: series("val_accuracy") },
        ],
        empty: "The accuracy curve starts after the first epoch.",
      }),
    );
  }

  function logRow(e) {
    const button = h("button", { type: "button", class: "link", "aria-label": `state as of position ${e.position}` }, "as of");
    button.addEventListener("click", () => showAsOf(e.position));
    return h(
      "tr",
      { "data-position": e.position, "data-type": e.type },
      h("td", { class: "num" }, String(e.position)),
      h("td", null, when(e.occurred_at)),
      h("td", null, e.type),
      h("td", null, summary(e)),
      h("td", null, button),
    );
  }

  async function showAsOf(position) {
    clear(asOf).append(h("p", { class: "help" }, `Reading the state as of position ${position}…`));
    try {
      const t = await api(`/trainings/${encodeURIComponent(trainingId)}?as_of=${position}`);
      clear(asOf).append(
        h(
          "div",
          { class: "as-of", "data-as-of": position },
          h("h3", null, `As of position ${position}`),
          facts([
            ["Status", statusBadge(h, t.status)],
            ["Phase", t.phase || ABSENT],
            ["Epoch", t.epoch ? `${t.epoch} of ${t.total_epochs}` : ABSENT],
            ["Batch", t.batch ? `${t.batch} of ${t.total_batches}` : ABSENT],
            ["Best val loss", num(t.best_metrics && t.best_metrics.val_loss, 4)],
          ]),
          h("button", { type: "button", class: "link", onclick: () => clear(asOf) }, "Close"),
        ),
      );
    } catch (error) {
      clear(asOf).append(problem(error));
    }
  }

  let logged = 0;
  function onEvent(e) {
    logged += 1;
    logBody.append(logRow(e));
    if (logBody.rows.length > LOG_ROWS) logBody.deleteRow(0);
    logCount.textContent = `${logged} events received${logged > LOG_ROWS ? `; the newest ${LOG_ROWS} are shown` : ""}.`;
    if (e.type === "Started" && e.attempt > attempt) {
      attempt = e.attempt;
      epochs.clear(); // a new attempt starts over
    }
    if (e.type === "EpochCompleted" && e.attempt >= attempt) {
      epochs.set(e.epoch, e);
      drawCharts();
    }
    const before = training.status;
    training = applyEvent(training, e);
    if (training.status !== before) drawHeader();
    drawProgress();
    if (["Completed", "Failed", "Cancelled"].includes(e.type)) refresh();
  }

  async function refresh() {
    try {
      training = await api(`/trainings/${encodeURIComponent(trainingId)}`);
    } catch (error) {
      ctx.banner(error.message);
      return;
    }
    drawHeader();
    drawProgress();
    drawResults();
  }

  function drawResults() {
    clear(results);
    if (training.status !== "completed") return;
    results.append(resultsSection(training));
  }

  (async () => {
    try {
      training = await api(`/trainings/${encodeURIComponent(trainingId)}`);
    } catch (error) {
      clear(root).append(h("p", null, h("a", { href: "#/trainings" }, "← All trainings")), problem(error));
      return;
    }
    if (stopped) return;
    drawHeader();
    drawProgress();
    drawCharts();
    drawResults();
    stream = follow(trainingId, {
      onEvent,
      onState(state, detail) {
        streamState.dataset.state = state;
        const words = {
          connecting: "Connecting to the live stream…",
          live: "Live: updates as the trainer reports.",
          reconnecting: `Connection lost; reconnecting in ${detail.wait} s (attempt ${detail.attempt}), resuming after event ${detail.last}.`,
          ended: "The training finished: the stream has ended.",
          error: `The live stream stopped: ${detail.error ? detail.error.message : ""}`,
        };
        streamState.textContent = words[state] || state;
      },
    });
  })();

  return () => {
    stopped = true;
    if (stream) stream.stop();
  };
}

function resultsSection(t) {
  const tm = t.test_metrics || {};
  const ci = tm.bootstrap || {};
  const best = tm.best_baseline || {};
  const trading = tm.trading || {};
  const el = h("section", { class: "panel", id: "test-results", "aria-labelledby": "results-h" }, h("h2", { id: "results-h" }, "Results on the test split"));
  el.append(
    h("p", { id: "verdict", class: tm.skill ? "verdict skill" : "verdict" }, h("strong", null, tm.skill ? "Skill: yes. " : "Skill: no. "), tm.verdict || ABSENT),
    facts(
      [
        ["Test samples", tm.samples ?? ABSENT],
        ["Accuracy", `${num(tm.accuracy)} (best baseline ${best.accuracy_name || ABSENT} ${num(best.accuracy)}; difference ${interval(ci.accuracy_minus_best_baseline)} at ${pct(ci.confidence)})`],
        ["Balanced accuracy", num(tm.balanced_accuracy)],
        ["Macro F1", num(tm.macro_f1)],
        ["Sharpe (net of costs)", `${num(trading.sharpe, 2)} ${interval(ci.sharpe, 2)}; best baseline ${best.sharpe_name || ABSENT} ${num(best.sharpe, 2)}, difference ${interval(ci.sharpe_minus_best_baseline, 2)}`],
        ["Cumulative return", pct(trading.cumulative_return, 2)],
        ["Max drawdown", pct(trading.max_drawdown, 2)],
        ["Hit rate", pct(trading.hit_rate, 1)],
        ["Exposure", pct(trading.exposure, 1)],
        ["Costs", tm.cost_bps === undefined ? ABSENT : `${tm.cost_bps} bps a trade`],
        ["Intervals", ci.method ? `${ci.method}, ${ci.resamples} resamples, blocks of ${ci.block_bars} bars` : ABSENT],
      ],
      { id: "test-metrics" },
    ),
  );
  if (Array.isArray(tm.confusion_matrix)) el.append(confusion(tm));
  if (tm.per_class) {
    el.append(
      h("h3", null, "Per class"),
      table(
        [
          { label: "Class", cell: ([name]) => name },
          { label: "Precision", cell: ([, c]) => num(c.precision), class: "num" },
          { label: "Recall", cell: ([, c]) => num(c.recall), class: "num" },
          { label: "F1", cell: ([, c]) => num(c.f1), class: "num" },
          { label: "Support", cell: ([, c]) => String(c.support ?? ABSENT), class: "num" },
        ],
        Object.entries(tm.per_class),
        { attrs: { id: "per-class" } },
      ),
    );
  }
  if (tm.baselines) {
    el.append(
      h("h3", null, "Baselines on the same rows"),
      table(
        [
          { label: "Baseline", cell: ([name]) => name },
          { label: "Accuracy", cell: ([, b]) => num(b.accuracy), class: "num" },
          { label: "Macro F1", cell: ([, b]) => num(b.macro_f1), class: "num" },
          { label: "Sharpe", cell: ([, b]) => num(b.trading && b.trading.sharpe, 2), class: "num" },
        ],
        Object.entries(tm.baselines),
      ),
    );
  }
  if (Array.isArray(tm.feature_importance) && tm.feature_importance.length) {
    el.append(
      h("h3", null, "Feature importance (accuracy drop when the feature is shuffled)"),
      table(
        [
          { label: "Feature", cell: (f) => f.feature },
          { label: "Accuracy drop", cell: (f) => signed(f.accuracy_drop), class: "num" },
        ],
        tm.feature_importance.slice(0, 15),
        { attrs: { id: "feature-importance" } },
      ),
    );
  }
  const wf = tm.walk_forward;
  if (wf && Array.isArray(wf.per_fold)) {
    el.append(
      h("h3", null, `Walk-forward: ${wf.folds} folds (${wf.window})`),
      table(
        [
          { label: "Fold", cell: (f) => String(f.fold) },
          { label: "Accuracy", cell: (f) => num(f.accuracy), class: "num" },
          { label: "Macro F1", cell: (f) => num(f.macro_f1), class: "num" },
          { label: "Sharpe", cell: (f) => `${num(f.sharpe, 2)} ${interval(f.bootstrap && f.bootstrap.sharpe, 2)}`, class: "num" },
          { label: "Skill", cell: (f) => (f.skill ? "yes" : "no") },
        ],
        wf.per_fold,
        { attrs: { id: "walk-forward" } },
      ),
    );
  }
  el.append(modelSection(t));
  return el;
}

function confusion(tm) {
  const classes = tm.per_class ? Object.keys(tm.per_class) : tm.confusion_matrix.map((_, i) => String(i));
  return h(
    "div",
    null,
    h("h3", null, "Confusion matrix (rows: true class, columns: predicted)"),
    h(
      "table",
      { id: "confusion-matrix", class: "matrix" },
      h("thead", null, h("tr", null, h("th", { scope: "col" }, "true \\ predicted"), classes.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", null, tm.confusion_matrix.map((row, i) => h("tr", null, h("th", { scope: "row" }, classes[i]), row.map((n) => h("td", { class: "num" }, String(n)))))),
    ),
  );
}

function modelSection(t) {
  const m = t.model;
  if (!m) return h("p", null, "No model was saved.");
  return h(
    "div",
    { id: "model" },
    h("h3", null, "Model"),
    facts([
      ["Name", h("a", { href: `#/models?strategy=${encodeURIComponent(m.strategy)}` }, modelName(m))],
      ["Size", bytes(m.bytes)],
      ["SHA-256", h("code", null, m.sha256 || ABSENT)],
    ]),
  );
}
