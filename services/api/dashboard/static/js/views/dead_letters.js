// Dead letters (admins): the messages the service parked, each with why; inspect one, requeue
// it (published again as it first was) or drop it.

import { api } from "../api.js";
import { append, clear, facts, h, table } from "../dom.js";
import { ABSENT, bytes, shortId, when } from "../format.js";
import { emptyState, problem } from "./common.js";

export function render(root) {
  const listArea = h("div", { id: "dead-list" }, h("p", { class: "help" }, "Loading dead letters…"));
  const detail = h("div", { id: "dead-detail", "aria-live": "polite" });
  const message = h("p", { id: "dead-message", role: "status" });
  root.append(
    h("h1", null, "Dead letters"),
    h("p", { class: "help" }, "Messages the service could not process. They stay parked until you requeue or drop them."),
    message,
    listArea,
    detail,
  );

  async function act(letter, action) {
    const verb = action === "requeue" ? "Requeue" : "Drop";
    if (!window.confirm(`${verb} dead letter ${letter.id} (${letter.type || letter.routing_key})?`)) return;
    try {
      if (action === "requeue") await api(`/dead-letters/${encodeURIComponent(letter.id)}/requeue`, { method: "POST" });
      else await api(`/dead-letters/${encodeURIComponent(letter.id)}`, { method: "DELETE" });
      message.textContent = action === "requeue" ? `Requeued ${letter.id}: its consumers get it anew.` : `Dropped ${letter.id}.`;
      clear(detail);
    } catch (error) {
      message.textContent = error.message;
    }
    load();
  }

  async function inspect(letter) {
    clear(detail).append(h("p", { class: "help" }, `Reading dead letter ${letter.id}…`));
    try {
      const full = await api(`/dead-letters/${encodeURIComponent(letter.id)}`);
      const { body, headers, ...rest } = full;
      append(clear(detail), [
        h(
          "section",
          { class: "panel", id: "dead-letter" },
          h("h2", null, `Dead letter ${letter.id}`),
          facts(Object.entries(rest).map(([k, v]) => [k, v === null || v === undefined ? ABSENT : typeof v === "object" ? JSON.stringify(v) : String(v)])),
          headers ? [h("h3", null, "Headers"), h("pre", null, JSON.stringify(headers, null, 2))] : null,
          body !== undefined ? [h("h3", null, "Body"), h("pre", null, typeof body === "string" ? body : JSON.stringify(body, null, 2))] : null,
        ),
      ]);
    } catch (error) {
      clear(detail).append(problem(error));
    }
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
            { label: "Message", cell: (d) => h("button", { type: "button", class: "link", onclick: () => inspect(d), "aria-label": `inspect dead letter ${d.id}` }, shortId(d.id)) },
            { label: "Type", cell: (d) => d.type || d.routing_key || ABSENT },
            { label: "Why", cell: (d) => d.reason || ABSENT },
            { label: "Queue", cell: (d) => d.queue || ABSENT },
            { label: "Training", cell: (d) => (d.training_id ? h("a", { href: `#/trainings/${d.training_id}` }, shortId(d.training_id)) : ABSENT) },
            { label: "Dead since", cell: (d) => when(d.dead_at) },
            { label: "Size", cell: (d) => bytes(d.size_bytes), class: "num" },
            {
              label: "",
              cell: (d) => [
                h("button", { type: "button", onclick: () => act(d, "requeue"), "aria-label": `requeue dead letter ${d.id}` }, "Requeue"),
                " ",
                h("button", { type: "button", class: "danger", onclick: () => act(d, "drop"), "aria-label": `drop dead letter ${d.id}` }, "Drop"),
              ],
            },
          ],
          items,
          { attrs: { id: "dead-letters" }, rowAttrs: (d) => ({ "data-letter": d.id }) },
        ),
      );
    } catch (error) {
      if (error.kind === "notfound") clear(listArea).append(emptyState("This service does not show its dead letters (no /api/v1/dead-letters)."));
      else clear(listArea).append(problem(error));
    }
  }

  load();
  return null;
}
