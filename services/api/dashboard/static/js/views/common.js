// What several views share: error and empty states, polling that stops with the view.

import { ApiError } from "../api.js";
import { h } from "../dom.js";

/** A clear message in place of a view's content (never a blank page). */
export function problem(error) {
  const message = error instanceof ApiError ? error.message : `Something went wrong: ${error}`;
  const kind = error instanceof ApiError ? error.kind : "other";
  return h("p", { class: `problem problem-${kind}`, role: "alert", "data-problem": kind }, message);
}

export function emptyState(message) {
  return h("p", { class: "empty", "data-empty": "true" }, message);
}

/** Runs `tick` now and every `seconds` until stopped; a failing tick shows its error via `onError`
 * and keeps polling (an outage clears once the API answers again). */
export function poll(tick, seconds, onError) {
  let stopped = false;
  let timer = null;
  const controller = new AbortController();
  async function loop() {
    if (stopped) return;
    try {
      await tick(controller.signal);
      onError(null);
    } catch (error) {
      if (error.name === "AbortError" || stopped) return;
      onError(error);
      if (error instanceof ApiError && ["auth", "forbidden", "notfound"].includes(error.kind)) return;
    }
    if (!stopped) timer = setTimeout(loop, seconds * 1000);
  }
  loop();
  return () => {
    stopped = true;
    controller.abort();
    clearTimeout(timer);
  };
}

/** A section with a heading and an element to fill. */
export function section(title, attrs = {}) {
  const body = h("div", { class: "section-body" });
  const el = h("section", { class: "panel", ...attrs }, h("h2", null, title), body);
  return [el, body];
}
