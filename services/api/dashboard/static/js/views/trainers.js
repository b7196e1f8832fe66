// Trainers: which are alive, on which device, how many slots, what they run.

import { api } from "../api.js";
import { clear, h, table } from "../dom.js";
import { ABSENT, list, shortId, when } from "../format.js";
import { emptyState, poll, problem } from "./common.js";

const FRESH_MS = 2 * 60 * 1000; // a heartbeat this recent: alive (as the API's submit check)

function alive(t) {
  if (typeof t.alive === "boolean") return t.alive;
  const seen = Date.parse(t.last_seen || t.last_seen_at || "");
  return Number.isFinite(seen) && Date.now() - seen < FRESH_MS;
}

export function render(root, _args, ctx) {
  const listArea = h("div", { id: "trainers-list" }, h("p", { class: "help" }, "Loading trainers…"));
  root.append(h("h1", null, "Trainers"), listArea);
  return poll(
    async (signal) => {
      const items = (await api("/trainers", { signal })).items;
      clear(listArea);
      if (!items.length) {
        listArea.append(emptyState("No trainer has reported yet: start one with `ktrdr trainer` (or `ktrdr up`)."));
        return;
      }
      listArea.append(
        table(
          [
            { label: "Trainer", cell: (t) => t.trainer_id },
            { label: "State", cell: (t) => h("span", { class: `status status-${alive(t) ? "running" : "failed"}` }, alive(t) ? "▶ alive" : "✖ stale") },
            { label: "Device", cell: (t) => (t.device ? `${t.device.type} (${t.device.name})` : ABSENT) },
            { label: "Slots", cell: (t) => `${(t.running || []).length} of ${t.concurrency ?? ABSENT} busy`, class: "num" },
            { label: "Running", cell: (t) => ((t.running || []).length ? (t.running || []).map((id) => h("a", { href: `#/trainings/${id}` }, shortId(id), " ")) : ABSENT) },
            { label: "Host", cell: (t) => t.host || ABSENT },
            { label: "Last heartbeat", cell: (t) => when(t.last_seen || t.last_seen_at) },
            { label: "Queues", cell: (t) => list(t.queues) },
          ],
          items,
          { attrs: { id: "trainers" }, rowAttrs: (t) => ({ "data-trainer": t.trainer_id }) },
        ),
      );
    },
    5,
    (error) => {
      if (error && error.kind === "notfound") clear(listArea).append(emptyState("This service does not list its trainers yet (no /api/v1/trainers)."));
      else if (error) clear(listArea).append(problem(error));
      ctx.banner("");
    },
  );
}
