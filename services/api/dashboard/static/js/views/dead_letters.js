// Dead letters (admins): messages the service could not process, with their reason; requeue or drop.

import { api } from "../api.js";
import { clear, h, table } from "../dom.js";
import { ABSENT, when } from "../format.js";
import { emptyState, problem } from "./common.js";

export function render(root) {
  const listArea = h("div", { id: "dead-list" }, h("p", { class: "help" }, "Loading dead letters…"));
  const detail = h("div", { id: "dead-detail", "aria-live": "polite" });
  const message = h("p", { id: "dead-message", role: "status" });
  root.append(h("h1", null, "Dead letters"), message, listArea, detail);

  async function act(letter, action) {
    try {
      await api(`/dead-letters/${encodeURIComponent(letter.id)}/${action}`, { method: "POST" });
      message.textContent = action === "requeue" ? `Requeued ${letter.id}.` : `Dropped ${letter.id}.`;
    } catch (error) {
      message.textContent = error.message;
    }
    load();
  }

  async function load() {
    try {
      const items = (await api("/dead-letters")).items;
      clear(listArea);
      if (!items.length) {
        listArea.append(emptyState("No dead letters: every message was processed."));
        return;
      }
      listArea.append(
        table(
          [
            { label: "Id", cell: (d) => h("button", { type: "button", class: "link", onclick: () => inspect(d) }, String(d.id)) },
            { label: "Routing key", cell: (d) => d.routing_key || ABSENT },
            { label: "Reason", cell: (d) => d.reason || ABSENT },
            { label: "Dead since", cell: (d) => when(d.dead_at || d.received_at) },
            {
              label: "",
              cell: (d) => [
                h("button", { type: "button", onclick: () => act(d, "requeue") }, "Requeue"),
                " ",
                h("button", { type: "button", class: "danger", onclick: () => act(d, "drop") }, "Drop"),
              ],
            },
          ],
          items,
          { attrs: { id: "dead-letters" } },
        ),
      );
    } catch (error) {
      if (error.kind === "notfound") clear(listArea).append(emptyState("This service does not show its dead letters yet (no /api/v1/dead-letters)."));
      else clear(listArea).append(problem(error));
    }
  }

  function inspect(letter) {
    clear(detail).append(h("section", { class: "panel" }, h("h2", null, `Dead letter ${letter.id}`), h("pre", null, JSON.stringify(letter, null, 2))));
  }

  load();
  return null;
}
