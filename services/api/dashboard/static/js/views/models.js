// Saved models: the caller's (admins: every tenant's), newest first, with a detail panel.

import { api } from "../api.js";
import { append, clear, facts, h, table } from "../dom.js";
import { ABSENT, num, when } from "../format.js";
import { emptyState, problem } from "./common.js";

export function render(root, _args, ctx) {
  const strategy = ctx.params.get("strategy") || "";
  const listArea = h("div", { id: "models-list" }, h("p", { class: "help" }, "Loading models…"));
  const detail = h("div", { id: "model-detail", "aria-live": "polite" });
  append(root, [h("h1", null, "Models"), strategy ? h("p", null, `Strategy ${strategy} · `, h("a", { href: "#/models" }, "all strategies")) : null, listArea, detail]);
  const controller = new AbortController();

  async function open(item) {
    clear(detail).append(h("p", { class: "help" }, `Reading ${item.strategy}/${item.name}…`));
    try {
      const path = item.links.self.replace(/^\/api\/v1/, "");
      const m = await api(path, { signal: controller.signal });
      const meta = m.metadata || {};
      clear(detail).append(
        h(
          "section",
          { class: "panel", id: "model-panel" },
          h("h2", null, `${m.strategy}/${m.version}`),
          facts([
            ["Tenant", m.tenant || "local (trained outside the service)"],
            ["Timeframe", m.timeframe || ABSENT],
            ["Created", when(meta.created_at)],
            ["Training", meta.training_id ? h("a", { href: `#/trainings/${meta.training_id}` }, meta.training_id) : ABSENT],
            ["Features", m.features ? `${m.features.count}` : ABSENT],
            ["Test accuracy", num(m.metrics && m.metrics.test_metrics ? m.metrics.test_metrics.accuracy : m.metrics && m.metrics.accuracy)],
          ]),
        ),
      );
    } catch (error) {
      if (error.name !== "AbortError") clear(detail).append(problem(error));
    }
  }

  (async () => {
    let items;
    try {
      const query = strategy ? `?strategy=${encodeURIComponent(strategy)}` : "";
      items = (await api(`/models${query}`, { signal: controller.signal })).items;
    } catch (error) {
      if (error.name !== "AbortError") clear(listArea).append(problem(error));
      return;
    }
    clear(listArea);
    if (!items.length) {
      listArea.append(emptyState("No saved models yet: a completed training saves one."));
      return;
    }
    items.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    listArea.append(
      table(
        [
          { label: "Model", cell: (m) => h("button", { type: "button", class: "link", onclick: () => open(m) }, `${m.strategy}/${m.name}`) },
          { label: "Tenant", cell: (m) => m.tenant || "local" },
          { label: "Timeframe", cell: (m) => m.timeframe || ABSENT },
          { label: "Version", cell: (m) => `v${m.version}${m.latest ? " (latest)" : ""}` },
          { label: "Created", cell: (m) => when(m.created_at) },
          { label: "Test accuracy", cell: (m) => num(m.test_accuracy), class: "num" },
        ],
        items,
        { attrs: { id: "models" }, rowAttrs: (m) => ({ "data-model": `${m.strategy}/${m.name}` }) },
      ),
    );
  })();
  return () => controller.abort();
}
