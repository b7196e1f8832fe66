// Trainers (admins): which are alive, on which device, their slots, what they run; and each
// device's request queue (depth, consumers). Re-read every few seconds.

import { api } from "../api.js";
import { append, clear, h, table } from "../dom.js";
import { ABSENT, seconds, shortId, when } from "../format.js";
import { emptyState, poll, problem } from "./common.js";

function state(t) {
  return t.stale
    ? h("span", { class: "status status-failed", "data-state": "stale" }, `✖ stale (${seconds(t.seen_s_ago)} ago)`)
    : h("span", { class: "status status-running", "data-state": "alive" }, "▶ alive");
}

function device(t) {
  const info = t.device_info || {};
  return info.name ? `${t.device || info.type} (${info.name})` : t.device || ABSENT;
}

export function render(root, _args, ctx) {
  const listArea = h("div", { id: "trainers-list" }, h("p", { class: "help" }, "Loading trainers…"));
  const queuesArea = h("div", { id: "queues-list" });
  const updated = h("p", { class: "help", role: "status" });
  root.append(h("h1", null, "Trainers"), updated, listArea, h("h2", null, "Request queues"), queuesArea);
  return poll(
    async (signal) => {
      const answer = await api("/trainers", { signal });
      const trainers = answer.trainers || [];
      updated.textContent = `Updated ${new Date().toLocaleTimeString()} · a trainer is stale after ${seconds(answer.stale_after_s)} without a heartbeat`;
      clear(listArea);
      if (!trainers.length) {
        listArea.append(emptyState("No trainer has sent a heartbeat yet: start one with `ktrdr trainer` (or `ktrdr up`)."));
      } else {
        listArea.append(
          table(
            [
              { label: "Trainer", cell: (t) => t.trainer_id },
              { label: "State", cell: state },
              { label: "Device", cell: device },
              { label: "Slots", cell: (t) => `${(t.running || []).length} of ${t.slots ?? ABSENT} busy`, class: "num" },
              { label: "Running", cell: (t) => ((t.running || []).length ? t.running.map((id) => [h("a", { href: `#/trainings/${id}` }, shortId(id)), " "]) : ABSENT) },
              { label: "Host", cell: (t) => t.host || ABSENT },
              { label: "Last heartbeat", cell: (t) => when(t.last_seen) },
            ],
            trainers,
            { attrs: { id: "trainers" }, rowAttrs: (t) => ({ "data-trainer": t.trainer_id }) },
          ),
        );
      }
      clear(queuesArea);
      if (answer.queues === null || answer.queues === undefined) {
        queuesArea.append(emptyState("The broker is not answering: queue depths are unknown for now."));
      } else {
        append(queuesArea, [
          table(
            [
              { label: "Queue", cell: (q) => q.queue },
              { label: "Device", cell: (q) => q.device },
              { label: "Waiting", cell: (q) => String(q.messages ?? ABSENT), class: "num" },
              { label: "Consumers", cell: (q) => String(q.consumers ?? ABSENT), class: "num" },
            ],
            answer.queues,
            { attrs: { id: "queues" } },
          ),
        ]);
      }
    },
    5,
    (error) => {
      if (error) clear(listArea).append(problem(error));
      ctx.banner("");
    },
  );
}
