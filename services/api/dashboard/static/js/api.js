// Talking to /api/v1 with the key the user gave (kept for the browser session only).

const KEY = "ktrdr.apiKey";
export const API = "/api/v1";

export const session = {
  get key() {
    return sessionStorage.getItem(KEY);
  },
  set(key) {
    sessionStorage.setItem(KEY, key);
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};

/** What went wrong, in words a person can act on. kind: auth | forbidden | notfound | invalid |
 * conflict | outage | other. fields: [{field, reason}] for invalid requests. */
export class ApiError extends Error {
  constructor(kind, status, message, fields = []) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.fields = fields;
  }
}

export const OUTAGE_MESSAGE =
  "Cannot reach the ktrdr API: the service may be down or restarting. The page tries again by itself.";
export const BAD_KEY_MESSAGE =
  "The API key was refused: it is unknown, wrong, revoked or expired. Enter a valid key.";

export function authHeaders() {
  const key = session.key;
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** Listeners told when the key is refused (the page then asks for another). */
const refused = new Set();
export function onKeyRefused(listener) {
  refused.add(listener);
  return () => refused.delete(listener);
}

export async function errorOf(response) {
  let problem = {};
  try {
    problem = await response.json();
  } catch {
    problem = {};
  }
  const detail = problem.detail || response.statusText || `HTTP ${response.status}`;
  const fields = Array.isArray(problem.errors) ? problem.errors : [];
  switch (response.status) {
    case 401:
      return new ApiError("auth", 401, BAD_KEY_MESSAGE);
    case 403:
      return new ApiError("forbidden", 403, `Not allowed with this key: ${detail}`);
    case 404:
      return new ApiError("notfound", 404, `Not found: ${detail}`);
    case 409:
      return new ApiError("conflict", 409, detail);
    case 422:
      return new ApiError("invalid", 422, detail, fields);
    case 429:
      return new ApiError("other", 429, `Too many failed attempts: ${detail}`);
    case 502:
    case 503:
    case 504:
      return new ApiError("outage", response.status, `The API is not ready: ${detail}`);
    default:
      return new ApiError("other", response.status, `The API answered ${response.status}: ${detail}`);
  }
}

/** JSON from the API, or an ApiError. */
export async function api(path, { method = "GET", body, signal, key } = {}) {
  const headers = { Accept: "application/json", ...authHeaders() };
  if (key !== undefined) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError("outage", 0, OUTAGE_MESSAGE);
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (error.kind === "auth" && key === undefined) refused.forEach((listener) => listener(error));
    throw error;
  }
  return response.status === 204 ? null : response.json();
}

/** Every item of a paged list (`items` + `next` cursor), up to `max`. */
export async function allPages(path, { max = 1000, signal } = {}) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path, { signal });
    items.push(...page.items);
    cursor = page.next;
  } while (cursor && items.length < max);
  return items;
}

/** The whole JSON event log of a training. */
export async function eventLog(trainingId, { signal } = {}) {
  const events = [];
  let after = 0;
  for (;;) {
    const page = await api(`/trainings/${encodeURIComponent(trainingId)}/events?after=${after}&limit=1000`, { signal });
    events.push(...page.events);
    if (page.next === null || page.next === undefined) return events;
    after = page.next;
  }
}
