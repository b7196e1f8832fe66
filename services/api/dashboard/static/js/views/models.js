// Saved models: the caller's (admins: every tenant's), newest first; a panel per model with its
// lineage, aliases (set one), and a download of its artifact. Fields the service does not send
// (an older API without the model registry) show as "—" and their controls stay hidden.

import { API, ApiError, api, authHeaders, errorOf } from "../api.js";
import { append, clear, facts, h, table } from "../dom.js";
import { ABSENT, bytes, list, num, when } from "../format.js";
import { emptyState, problem } from "./common.js";

/** The path of a link the API gave (they carry its prefix). */
function apiPath(link) {
  return link.startsWith(API) ? link.slice(API.length) : link;
}

/** Downloads with the key (a plain link cannot send it): fetch, then save the blob. */
async function download(item, status) {
  status.textContent = `Downloading ${item.strategy}/${item.name}…`;
  let response;
  try {
    response = await fetch(item.links.download, { headers: authHeaders(), cache: "no-store" });
  } catch {
    status.textContent = "Cannot reach the ktrdr API: the download did not start.";
    return;
  }
  if (!response.ok) {
    status.textContent = (await errorOf(response)).message;
    return;
  }
  const blob = await response.blob();
  const sha = response.headers.get("X-Checksum-SHA256");
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: `${item.strategy}-${item.name}.tar` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  status.textContent = `Downloaded ${item.strategy}-${item.name}.tar (${bytes(blob.size)})${sha ? `, sha256 ${sha}` : ""}.`;
}

function lineageFacts(lineage) {
  if (!lineage) return h("p", { class: "help" }, "No lineage recorded for this model.");
  const files = lineage.data_files && typeof lineage.data_files === "object" ? Object.entries(lineage.data_files) : [];
  return facts(
    [
      ["Training", lineage.training_id ? h("a", { href: `#/trainings/${lineage.training_id}` }, lineage.training_id) : ABSENT],
      ["Strategy sha256", lineage.strategy_sha256 ? h("code", null, lineage.strategy_sha256) : ABSENT],
      ["Data", `${list(lineage.symbols)} ${list(lineage.timeframes)}, ${lineage.start_date || "start"} → ${lineage.end_date || "end"}`],
      ["Data files", files.length ? h("ul", null, files.map(([name, sha]) => h("li", null, `${name} `, h("code", null, typeof sha === "string" ? sha.slice(0, 16) + "…" : JSON.stringify(sha))))) : ABSENT],
      ["Seed", lineage.seed ?? ABSENT],
      ["Overrides", lineage.overrides && Object.keys(lineage.overrides).length ? JSON.stringify(lineage.overrides) : ABSENT],
      ["Code version", lineage.code_version || ABSENT],
      ["Device", lineage.device ? `${lineage.device.type || ""} ${lineage.device.name || ""}`.trim() : ABSENT],
    ],
    { id: "model-lineage" },
  );
}

export function render(root, _args, ctx) {
  const strategy = ctx.params.get("strategy") || "";
  const listArea = h("div", { id: "models-list" }, h("p", { class: "help" }, "Loading models…"));
  const detail = h("div", { id: "model-detail", "aria-live": "polite" });
  const status = h("p", { id: "models-status", role: "status" });
  append(root, [
    h("h1", null, "Models"),
    strategy ? h("p", null, `Strategy ${strategy} · `, h("a", { href: "#/models" }, "all strategies")) : null,
    status,
    listArea,
    detail,
  ]);
  const controller = new AbortController();

  function aliasForm(item, m) {
    const name = h("input", { id: "alias-name", name: "alias", type: "text", required: true, placeholder: "champion" });
    const error = h("p", { class: "field-error", id: "alias-error" });
    const form = h(
      "form",
      { class: "inline-form", id: "alias-form" },
      h("label", { for: "alias-name" }, `Point an alias at ${m.version}`),
      name,
      h("button", { type: "submit" }, "Set alias"),
      error,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      try {
        await api(`/models/${encodeURIComponent(item.strategy)}/aliases/${encodeURIComponent(name.value.trim())}`, {
          method: "PUT",
          body: { version: item.name },
        });
        status.textContent = `Alias ${name.value.trim()} now names ${item.strategy}/${item.name}.`;
        load();
        open(item);
      } catch (failure) {
        error.textContent = failure instanceof ApiError && failure.fields.length ? failure.fields.map((f) => `${f.field}: ${f.reason}`).join("; ") : failure.message;
      }
    });
    return form;
  }

  async function open(item) {
    clear(detail).append(h("p", { class: "help" }, `Reading ${item.strategy}/${item.name}…`));
    try {
      const m = await api(apiPath(item.links.self), { signal: controller.signal });
      const meta = m.metadata || {};
      const lineage = m.lineage || item.lineage || null;
      const tm = (m.metrics && m.metrics.test_metrics) || {};
      append(clear(detail), [
        h(
          "section",
          { class: "panel", id: "model-panel" },
          h("h2", null, `${m.strategy}/${m.version}`),
          facts([
            ["Tenant", m.tenant || "local (trained outside the service)"],
            ["Timeframe", m.timeframe || ABSENT],
            ["Created", when(m.created_at || meta.created_at)],
            ["Aliases", list(m.aliases || item.aliases)],
            ["Test accuracy", num(tm.accuracy ?? item.test_accuracy)],
            ["Verdict", tm.verdict || item.verdict || ABSENT],
            ["Features", m.features ? String(m.features.count) : ABSENT],
            ["Artifact", m.artifact ? `${bytes(m.artifact.size ?? m.artifact.bytes)}, sha256 ${m.artifact.sha256 || ABSENT}` : ABSENT],
          ]),
          h("h3", null, "Lineage"),
          lineageFacts(lineage),
          item.links && item.links.download && m.artifact
            ? h("p", null, h("button", { type: "button", id: "model-download", onclick: () => download(item, status) }, "Download the model"))
            : null,
          item.training_id || (lineage && lineage.training_id) ? aliasForm(item, m) : null,
        ),
      ]);
    } catch (error) {
      if (error.name !== "AbortError") clear(detail).append(problem(error));
    }
  }

  async function load() {
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
          { label: "Version", cell: (m) => `v${m.version}` },
          { label: "Aliases", cell: (m) => list(m.aliases || (m.latest ? ["latest"] : [])) },
          { label: "Created", cell: (m) => when(m.created_at) },
          { label: "Test accuracy", cell: (m) => num(m.test_accuracy), class: "num" },
          { label: "Training", cell: (m) => (m.training_id ? h("a", { href: `#/trainings/${m.training_id}` }, m.training_id.slice(0, 8)) : ABSENT) },
        ],
        items,
        { attrs: { id: "models" }, rowAttrs: (m) => ({ "data-model": `${m.strategy}/${m.name}` }) },
      ),
    );
  }

  load();
  return () => controller.abort();
}
