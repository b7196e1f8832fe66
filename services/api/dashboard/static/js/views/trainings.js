// The trainings list: live (re-read every few seconds), filtered by status and strategy on the
// server, searched within the page, and paged by the API's cursors (fast however many there are).

import { api } from "../api.js";
import { clear, h, table } from "../dom.js";
import { ABSENT, duration, list, num, pct, shortId, statusBadge } from "../format.js";
import { emptyState, poll, problem } from "./common.js";

const STATUSES = ["", "queued", "running", "cancelling", "completed", "failed", "cancelled"];
const PAGE_SIZE = 25;
const REFRESH_S = 3;

export function verdictWord(training) {
  const tm = training.test_metrics;
  if (!tm || typeof tm.skill !== "boolean") return ABSENT;
  return tm.skill ? "skill" : "no skill";
}

export function render(root, _args, ctx) {
  const params = ctx.params;
  const state = {
    status: params.get("status") || "",
    strategy: params.get("strategy") || "",
    search: params.get("q") || "",
    cursors: [null], // the cursor of each page visited, for "Previous"
    next: null,
    items: [],
    selected: new Set(),
  };

  const statusSelect = h("select", { id: "filter-status", name: "status" }, STATUSES.map((s) => h("option", { value: s }, s || "any status")));
  statusSelect.value = state.status;
  const strategyInput = h("input", { id: "filter-strategy", name: "strategy", type: "text", value: state.strategy, placeholder: "any strategy", pattern: "[A-Za-z0-9_.\\-]*" });
  const searchInput = h("input", { id: "filter-search", name: "q", type: "search", value: state.search, placeholder: "id, strategy or symbol" });
  const compareButton = h("button", { type: "button", id: "compare-selected", disabled: true }, "Compare selected");
  const status = h("p", { class: "help", id: "list-status", role: "status" });
  const listArea = h("div", { id: "trainings-list" });
  const prev = h("button", { type: "button", id: "page-prev", disabled: true }, "← Newer");
  const nextButton = h("button", { type: "button", id: "page-next", disabled: true }, "Older →");
  const pageLabel = h("span", { class: "help", id: "page-label" });

  const filters = h(
    "form",
    { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
    h("label", { for: "filter-status" }, "Status"),
    statusSelect,
    h("label", { for: "filter-strategy" }, "Strategy"),
    strategyInput,
    h("label", { for: "filter-search" }, "Search this page"),
    searchInput,
  );
  root.append(
    h("div", { class: "title-row" }, h("h1", null, "Trainings"), h("a", { class: "button", href: "#/submit" }, "Submit a training")),
    filters,
    h("div", { class: "toolbar" }, compareButton, status),
    listArea,
    h("nav", { class: "pager", "aria-label": "Pages" }, prev, pageLabel, nextButton),
  );

  function visible() {
    const q = state.search.trim().toLowerCase();
    if (!q) return state.items;
    return state.items.filter((t) =>
      [t.training_id, t.strategy || "", ...(t.symbols || []), t.status].some((v) => v.toLowerCase().includes(q)),
    );
  }

  function draw() {
    const rows = visible();
    clear(listArea);
    compareButton.disabled = state.selected.size < 2;
    compareButton.textContent = `Compare selected (${state.selected.size})`;
    const page = state.cursors.length;
    pageLabel.textContent = `page ${page}`;
    prev.disabled = page <= 1;
    nextButton.disabled = !state.next;
    if (!state.items.length) {
      const filtered = state.status || state.strategy;
      listArea.append(
        emptyState(filtered ? "No training matches these filters." : "No trainings yet. Submit one to see it here."),
      );
      return;
    }
    if (!rows.length) {
      listArea.append(emptyState(`No training on this page matches “${state.search}”.`));
      return;
    }
    listArea.append(
      table(
        [
          {
            label: h("span", { class: "visually-hidden" }, "Select"),
            cell: (t) =>
              h("input", {
                type: "checkbox",
                "aria-label": `select ${shortId(t.training_id)} for comparison`,
                checked: state.selected.has(t.training_id),
                onchange: (e) => {
                  if (e.target.checked) state.selected.add(t.training_id);
                  else state.selected.delete(t.training_id);
                  compareButton.disabled = state.selected.size < 2;
                  compareButton.textContent = `Compare selected (${state.selected.size})`;
                },
              }),
          },
          { label: "Training", cell: (t) => h("a", { href: `#/trainings/${t.training_id}`, title: t.training_id }, shortId(t.training_id)) },
          { label: "Status", cell: (t) => statusBadge(h, t.status) },
          { label: "Strategy", cell: (t) => t.strategy || ABSENT },
          { label: "Symbols", cell: (t) => list(t.symbols) },
          { label: "Progress", cell: (t) => progressCell(t), class: "num" },
          { label: "Duration", cell: (t) => duration(t), class: "num" },
          { label: "Best val loss", cell: (t) => num(t.best_metrics && t.best_metrics.val_loss), class: "num" },
          { label: "Verdict", cell: (t) => h("span", { title: (t.test_metrics && t.test_metrics.verdict) || "" }, verdictWord(t)) },
        ],
        rows,
        { attrs: { class: "trainings" }, rowAttrs: (t) => ({ "data-training": t.training_id, "data-status": t.status }) },
      ),
    );
  }

  async function load(signal) {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (state.status) query.set("status", state.status);
    if (state.strategy) query.set("strategy", state.strategy);
    const cursor = state.cursors[state.cursors.length - 1];
    if (cursor) query.set("cursor", cursor);
    const page = await api(`/trainings?${query}`, { signal });
    state.items = page.items;
    state.next = page.next;
    status.textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes every ${REFRESH_S} s`;
    draw();
  }

  function onError(error) {
    if (!error) {
      ctx.banner("");
      return;
    }
    if (!state.items.length) clear(listArea).append(problem(error));
    else ctx.banner(error.message);
  }

  let stop = poll(load, REFRESH_S, onError);
  function restart() {
    stop();
    const query = new URLSearchParams();
    if (state.status) query.set("status", state.status);
    if (state.strategy) query.set("strategy", state.strategy);
    if (state.search) query.set("q", state.search);
    history.replaceState(null, "", `#/trainings${query.toString() ? "?" + query : ""}`);
    stop = poll(load, REFRESH_S, onError);
  }
  statusSelect.addEventListener("change", () => {
    state.status = statusSelect.value;
    state.cursors = [null];
    restart();
  });
  strategyInput.addEventListener("change", () => {
    if (!strategyInput.checkValidity()) return;
    state.strategy = strategyInput.value.trim();
    state.cursors = [null];
    restart();
  });
  searchInput.addEventListener("input", () => {
    state.search = searchInput.value;
    draw();
  });
  nextButton.addEventListener("click", () => {
    if (!state.next) return;
    state.cursors.push(state.next);
    restart();
  });
  prev.addEventListener("click", () => {
    if (state.cursors.length > 1) state.cursors.pop();
    restart();
  });
  compareButton.addEventListener("click", () => {
    ctx.go(`#/compare/${[...state.selected].join(",")}`);
  });
  return () => stop();
}

function progressCell(t) {
  if (t.progress === null || t.progress === undefined) return ABSENT;
  return h("span", null, h("progress", { max: 1, value: t.progress, "aria-hidden": "true" }), " ", pct(t.progress));
}
