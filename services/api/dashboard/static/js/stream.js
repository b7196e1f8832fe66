// Following a training's event stream over fetch (EventSource cannot send the API key).
//
// Resuming: every message's `id:` is the event's global position; after a dropped connection the
// next request sends `Last-Event-ID` with the last position received, and the server replays
// exactly what came after it (no gap, no duplicate). Positions at or below the last one are
// ignored all the same, so nothing is ever shown twice.

import { API, authHeaders, errorOf } from "./api.js";
import { TERMINAL_EVENTS } from "./format.js";

const BACKOFF_S = [0.5, 1, 2, 4, 8];

/** Parses an SSE byte stream's text, line by line, into {id, event, data} messages. */
export class SseParser {
  constructor() {
    this.buffer = "";
    this.reset();
  }

  reset() {
    this.id = null;
    this.event = null;
    this.data = [];
  }

  /** Feed a chunk of text; returns the complete messages it finished. */
  feed(text) {
    this.buffer += text;
    const messages = [];
    let newline;
    while ((newline = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, newline);
      const width = this.buffer.startsWith("\r\n", newline) ? 2 : 1;
      this.buffer = this.buffer.slice(newline + width);
      const message = this.line(line);
      if (message) messages.push(message);
    }
    return messages;
  }

  line(line) {
    if (line === "") {
      const message = this.event || this.data.length ? { id: this.id, event: this.event || "message", data: this.data.join("\n") } : null;
      this.reset();
      return message;
    }
    if (line.startsWith(":")) return null; // a comment: keep-alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") this.id = value;
    else if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    return null;
  }
}

/**
 * Follows /trainings/{id}/events until the terminal event, reconnecting after drops.
 * onEvent(event) gets each event's JSON (with `position`) once, in order; onState(state, detail)
 * hears "connecting" | "live" | "reconnecting" | "ended" | "error". Returns {stop()}.
 */
export function follow(trainingId, { onEvent, onState, after = 0 }) {
  const controller = new AbortController();
  let last = after;
  let stopped = false;

  async function connectOnce() {
    const headers = { Accept: "text/event-stream", ...authHeaders() };
    if (last > 0) headers["Last-Event-ID"] = String(last);
    const response = await fetch(`${API}/trainings/${encodeURIComponent(trainingId)}/events`, {
      headers,
      signal: controller.signal,
      cache: "no-store",
    });
    if (!response.ok) throw await errorOf(response);
    onState("live", { after: last });
    const parser = new SseParser();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return false; // the server closed without a terminal event: reconnect
      for (const message of parser.feed(value)) {
        const position = Number(message.id);
        if (!Number.isFinite(position) || position <= last) continue;
        last = position;
        const event = JSON.parse(message.data);
        onEvent(event);
        if (TERMINAL_EVENTS.has(event.type)) return true;
      }
    }
  }

  (async () => {
    let failures = 0;
    onState("connecting", {});
    while (!stopped) {
      try {
        if (await connectOnce()) {
          onState("ended", { last });
          return;
        }
        failures = 0;
      } catch (error) {
        if (stopped || error.name === "AbortError") return;
        if (error.kind && error.kind !== "outage") {
          onState("error", { error });
          return; // a refused key or a missing training: retrying cannot help
        }
        failures += 1;
      }
      if (stopped) return;
      const wait = BACKOFF_S[Math.min(failures, BACKOFF_S.length - 1)];
      onState("reconnecting", { attempt: failures, wait, last });
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
    }
  })();

  return {
    stop() {
      stopped = true;
      controller.abort();
    },
    get last() {
      return last;
    },
  };
}
