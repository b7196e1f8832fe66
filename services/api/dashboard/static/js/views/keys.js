// API keys (admins): list, create (the key is shown once), revoke.

import { api } from "../api.js";
import { clear, h, table } from "../dom.js";
import { when } from "../format.js";
import { emptyState, problem } from "./common.js";

export function render(root) {
  const listArea = h("div", { id: "keys-list" }, h("p", { class: "help" }, "Loading keys…"));
  const created = h("div", { id: "key-created", role: "status" });
  const name = h("input", { id: "key-name", name: "name", type: "text", required: true, pattern: "[A-Za-z0-9_.@\\- ]+", "aria-describedby": "key-name-error" });
  const role = h("select", { id: "key-role", name: "role" }, ["reader", "trainer-user", "admin"].map((r) => h("option", { value: r }, r)));
  role.value = "trainer-user";
  const nameError = h("p", { class: "field-error", id: "key-name-error" });
  const form = h(
    "form",
    { class: "inline-form", id: "key-form-create" },
    h("label", { for: "key-name" }, "Name"),
    name,
    h("label", { for: "key-role" }, "Role"),
    role,
    h("button", { type: "submit" }, "Create key"),
    nameError,
  );
  root.append(h("h1", null, "API keys"), h("h2", null, "New key"), form, created, h("h2", null, "Keys"), listArea);

  async function load() {
    try {
      const keys = (await api("/keys")).items;
      clear(listArea);
      if (!keys.length) {
        listArea.append(emptyState("No keys."));
        return;
      }
      listArea.append(
        table(
          [
            { label: "Key id", cell: (k) => h("code", null, k.key_id) },
            { label: "Name", cell: (k) => k.name },
            { label: "Tenant", cell: (k) => k.tenant },
            { label: "Role", cell: (k) => k.role },
            { label: "State", cell: (k) => (k.active ? "active" : k.revoked_at ? "revoked" : "expired") },
            { label: "Created", cell: (k) => when(k.created_at) },
            { label: "Last used", cell: (k) => when(k.last_used_at) },
            {
              label: "",
              cell: (k) =>
                k.active
                  ? h("button", { type: "button", class: "danger", "aria-label": `revoke key ${k.key_id} (${k.name})`, onclick: () => revoke(k) }, "Revoke")
                  : "",
            },
          ],
          keys,
          { attrs: { id: "keys" }, rowAttrs: (k) => ({ "data-key": k.key_id }) },
        ),
      );
    } catch (error) {
      clear(listArea).append(problem(error));
    }
  }

  async function revoke(key) {
    if (!window.confirm(`Revoke key ${key.key_id} (${key.name})? Requests with it fail from now on.`)) return;
    try {
      await api(`/keys/${key.key_id}/revoke`, { method: "POST" });
    } catch (error) {
      clear(created).append(problem(error));
    }
    load();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(nameError);
    clear(created);
    try {
      const key = await api("/keys", { method: "POST", body: { name: name.value.trim(), role: role.value } });
      created.append(
        h("p", null, `Key for ${key.name} (${key.role}) created. Copy it now: it is never shown again.`),
        h("pre", { id: "new-key" }, key.key),
      );
      name.value = "";
      load();
    } catch (error) {
      if (error.kind === "invalid") nameError.textContent = error.fields.map((f) => `${f.field}: ${f.reason}`).join("; ") || error.message;
      else created.append(problem(error));
    }
  });
  load();
  return null;
}
