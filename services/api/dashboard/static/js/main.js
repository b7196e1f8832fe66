// The dashboard's shell: the key prompt, the navigation and a hash router over the views.

import { ApiError, BAD_KEY_MESSAGE, api, onKeyRefused, session } from "./api.js";
import { clear, h } from "./dom.js";
import * as compare from "./views/compare.js";
import * as deadLetters from "./views/dead_letters.js";
import * as keys from "./views/keys.js";
import * as models from "./views/models.js";
import * as submit from "./views/submit.js";
import * as trainers from "./views/trainers.js";
import * as training from "./views/training.js";
import * as trainings from "./views/trainings.js";

const ROUTES = [
  [/^#\/trainings\/([^/?]+)$/, training, "trainings"],
  [/^#\/(?:trainings)?$/, trainings, "trainings"],
  [/^#\/submit$/, submit, "submit"],
  [/^#\/compare(?:\/(.*))?$/, compare, "compare"],
  [/^#\/models$/, models, "models"],
  [/^#\/trainers$/, trainers, "trainers"],
  [/^#\/dead-letters$/, deadLetters, "dead-letters"],
  [/^#\/keys$/, keys, "keys"],
];

const main = document.getElementById("main");
const banner = document.getElementById("banner");
let cleanup = null;

/** A message across the top of the page (errors only; views show their own empty states). */
export function showBanner(message) {
  banner.textContent = message;
  banner.hidden = !message;
}

function leaveView() {
  if (cleanup) {
    try {
      cleanup();
    } catch {
      /* a view's teardown must not stop the next one */
    }
  }
  cleanup = null;
}

function keyPrompt(message) {
  leaveView();
  document.getElementById("nav").hidden = true;
  clear(document.getElementById("who"));
  const input = h("input", {
    id: "api-key",
    name: "api-key",
    type: "password",
    autocomplete: "off",
    required: true,
    spellcheck: "false",
    "aria-describedby": "api-key-help api-key-error",
  });
  const error = h("p", { id: "api-key-error", class: "field-error", role: "alert" }, message || "");
  const button = h("button", { type: "submit" }, "Use this key");
  const form = h(
    "form",
    { class: "key-prompt", id: "key-form" },
    h("h1", null, "ktrdr trainings"),
    h("label", { for: "api-key" }, "API key"),
    input,
    h(
      "p",
      { id: "api-key-help", class: "help" },
      "A key looks like ktrdr_<16 hex>_<secret>. `ktrdr up` prints an admin key on its first start; ",
      "`ktrdr keys create` makes others. The browser keeps it until this tab is closed.",
    ),
    error,
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    button.disabled = true;
    error.textContent = "Checking the key…";
    try {
      await api("/trainings?limit=1", { key });
      session.set(key);
      showBanner("");
      route();
    } catch (failure) {
      error.textContent = failure instanceof ApiError ? failure.message : String(failure);
      button.disabled = false;
      input.focus();
    }
  });
  clear(main).append(form);
  input.focus();
}

async function showWho() {
  const who = clear(document.getElementById("who"));
  who.append(
    h("span", { class: "help" }, "key ", h("code", null, (session.key || "").split("_").slice(0, 2).join("_"))),
    " ",
    h(
      "button",
      {
        type: "button",
        class: "link",
        onclick: () => {
          session.clear();
          keyPrompt("");
        },
      },
      "Use another key",
    ),
  );
}

function route() {
  if (!session.key) {
    keyPrompt("");
    return;
  }
  leaveView();
  document.getElementById("nav").hidden = false;
  showWho();
  const hash = location.hash || "#/trainings";
  for (const [pattern, view, section] of ROUTES) {
    const match = hash.split("?")[0].match(pattern);
    if (!match) continue;
    for (const link of document.querySelectorAll("#nav a")) {
      if (link.dataset.section === section) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    clear(main);
    const params = new URLSearchParams(hash.includes("?") ? hash.slice(hash.indexOf("?") + 1) : "");
    const context = { params, banner: showBanner, go: (to) => (location.hash = to) };
    cleanup = view.render(main, match.slice(1).map((part) => (part ? decodeURIComponent(part) : part)), context) || null;
    return;
  }
  clear(main).append(h("h1", null, "Not found"), h("p", null, "No such page. ", h("a", { href: "#/trainings" }, "Back to the trainings.")));
}

onKeyRefused(() => {
  session.clear();
  keyPrompt(BAD_KEY_MESSAGE);
});
window.addEventListener("hashchange", route);
route();
