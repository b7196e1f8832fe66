// Submitting a training: a strategy from /strategies or one's own YAML, symbols, timeframes,
// dates, device, epochs, seed. The API's field errors are shown next to the field they concern.

import { ApiError, api } from "../api.js";
import { append, clear, h } from "../dom.js";
import { problem } from "./common.js";

const DEVICES = [
  ["any", "any (the first free trainer)"],
  ["cpu", "cpu"],
  ["cuda", "cuda (NVIDIA GPU)"],
  ["mps", "mps (Apple GPU)"],
];
const UPLOAD = "__upload__";

/** Which form field an API error's `field` concerns ("symbols[1]" → symbols, "overrides.epochs"
 * → epochs, a strategy's own field → the strategy picker or the uploaded file). */
export function fieldFor(apiField, uploading) {
  const head = apiField.split(/[.[]/)[0];
  if (apiField === "overrides.epochs" || apiField.startsWith("overrides.epochs")) return "epochs";
  if (head === "overrides") return "epochs";
  if (head === "strategy_yaml") return "strategy_file";
  if (head === "strategy") return uploading ? "strategy_file" : "strategy";
  if (["symbols", "timeframes", "start_date", "end_date", "seed", "device"].includes(head)) return head;
  if (head === "data") return "symbols";
  return null;
}

function field(name, label, control, help) {
  return h(
    "div",
    { class: "field", id: `field-${name}` },
    h("label", { for: name }, label),
    control,
    help ? h("p", { class: "help", id: `${name}-help` }, help) : null,
    h("p", { class: "field-error", id: `${name}-error`, "aria-live": "polite" }),
  );
}

export function render(root, _args, ctx) {
  let yamlText = null;
  const strategy = h("select", { id: "strategy", name: "strategy", "aria-describedby": "strategy-help strategy-error" }, h("option", { value: "" }, "Loading strategies…"));
  const file = h("input", { id: "strategy_file", name: "strategy_file", type: "file", accept: ".yaml,.yml,text/yaml", "aria-describedby": "strategy_file-error" });
  const symbols = h("input", { id: "symbols", name: "symbols", type: "text", "aria-describedby": "symbols-help symbols-error" });
  const timeframes = h("input", { id: "timeframes", name: "timeframes", type: "text", "aria-describedby": "timeframes-help timeframes-error" });
  const start = h("input", { id: "start_date", name: "start_date", type: "date", "aria-describedby": "start_date-error" });
  const end = h("input", { id: "end_date", name: "end_date", type: "date", "aria-describedby": "end_date-error" });
  const device = h("select", { id: "device", name: "device", "aria-describedby": "device-error" }, DEVICES.map(([v, l]) => h("option", { value: v }, l)));
  const epochs = h("input", { id: "epochs", name: "epochs", type: "number", min: 1, step: 1, "aria-describedby": "epochs-help epochs-error" });
  const seed = h("input", { id: "seed", name: "seed", type: "number", min: 0, step: 1, value: "42", "aria-describedby": "seed-error" });
  const formError = h("div", { id: "form-error", role: "alert" });
  const warnings = h("div", { id: "submit-warnings", role: "status" });
  const button = h("button", { type: "submit", id: "submit-training" }, "Submit training");
  const fileField = field("strategy_file", "Strategy file (YAML)", file, null);
  fileField.hidden = true;
  const strategies = new Map();

  const form = h(
    "form",
    { id: "submit-form", class: "submit-form", novalidate: true },
    field("strategy", "Strategy", strategy, "From the service's strategies folder, or upload your own YAML."),
    fileField,
    field("symbols", "Symbols", symbols, "Comma-separated; empty: the strategy's own."),
    field("timeframes", "Timeframes", timeframes, "Comma-separated; empty: the strategy's own."),
    h("div", { class: "field-row" }, field("start_date", "Start date", start), field("end_date", "End date", end)),
    field("device", "Device", device),
    h("div", { class: "field-row" }, field("epochs", "Epochs", epochs, "Empty: the strategy's own."), field("seed", "Seed", seed)),
    formError,
    button,
    warnings,
  );
  root.append(h("h1", null, "Submit a training"), form);

  function describe() {
    const chosen = strategies.get(strategy.value);
    symbols.placeholder = chosen ? chosen.symbols.join(", ") : "";
    timeframes.placeholder = chosen ? chosen.timeframes.join(", ") : "";
    fileField.hidden = strategy.value !== UPLOAD;
  }
  strategy.addEventListener("change", describe);
  file.addEventListener("change", async () => {
    yamlText = file.files.length ? await file.files[0].text() : null;
  });

  (async () => {
    try {
      const list = await api("/strategies");
      clear(strategy);
      for (const item of list.items) {
        strategies.set(item.name, item);
        const label = item.error ? `${item.name} (does not load)` : item.description ? `${item.name} — ${item.description}` : item.name;
        strategy.append(h("option", { value: item.name, disabled: Boolean(item.error) }, label));
      }
      strategy.append(h("option", { value: UPLOAD }, "Upload my own YAML…"));
      if (!list.items.length) strategy.value = UPLOAD;
      describe();
    } catch (error) {
      clear(formError).append(problem(error));
    }
  })();

  function showErrors(error) {
    const uploading = strategy.value === UPLOAD;
    const unplaced = [];
    for (const item of error.fields) {
      const name = fieldFor(item.field, uploading);
      const target = name && document.getElementById(`${name}-error`);
      if (target && !target.closest("[hidden]")) {
        // A field inside the strategy (or an item of a list) is named: "indicators[0].period".
        const inner = item.field.replace(/^strategy(_yaml)?\.?/, "");
        const where = inner && inner !== name ? `${inner}: ` : "";
        target.append(h("span", { "data-field": item.field }, `${where}${item.reason} `));
        document.getElementById(name).setAttribute("aria-invalid", "true");
      } else {
        unplaced.push(`${item.field}: ${item.reason}`);
      }
    }
    const summary = error.fields.length ? "The training was not submitted: see the fields marked below." : error.message;
    append(clear(formError), [h("p", { class: "problem" }, summary), unplaced.length ? h("ul", null, unplaced.map((u) => h("li", null, u))) : null]);
    const first = form.querySelector("[aria-invalid=true]");
    if (first) first.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const el of form.querySelectorAll(".field-error")) clear(el);
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    clear(formError);
    clear(warnings);
    const body = { device: device.value };
    const split = (v) => v.split(",").map((x) => x.trim()).filter(Boolean);
    if (strategy.value === UPLOAD) {
      if (!yamlText) {
        showErrors(new ApiError("invalid", 0, "", [{ field: "strategy_yaml", reason: "choose a YAML file" }]));
        return;
      }
      body.strategy_yaml = yamlText;
    } else {
      body.strategy = strategy.value;
    }
    if (split(symbols.value).length) body.symbols = split(symbols.value);
    if (split(timeframes.value).length) body.timeframes = split(timeframes.value);
    if (start.value) body.start_date = start.value;
    if (end.value) body.end_date = end.value;
    if (epochs.value !== "") body.overrides = { epochs: Number(epochs.value) };
    if (seed.value !== "") body.seed = Number(seed.value);
    button.disabled = true;
    try {
      const accepted = await api("/trainings", { method: "POST", body });
      if (accepted.warnings && accepted.warnings.length) sessionStorage.setItem(`ktrdr.warnings.${accepted.training_id}`, JSON.stringify(accepted.warnings));
      ctx.go(`#/trainings/${accepted.training_id}`);
    } catch (error) {
      if (error instanceof ApiError && error.kind === "invalid") showErrors(error);
      else clear(formError).append(problem(error));
    } finally {
      button.disabled = false;
    }
  });
  return null;
}
