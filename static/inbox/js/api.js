// The REST API: same-origin fetch with the CSRF token; 401 sends the agent to the login page.

function csrfToken() {
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  if (cookie) return decodeURIComponent(cookie.split("=")[1]);
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

export function createApi({ base, loginUrl }) {
  return async function api(method, path, body, headers = {}) {
    const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
    if (method !== "GET") init.headers["X-CSRFToken"] = csrfToken();
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path.startsWith("/") ? path : base + path, init);
    } catch (e) {
      return { ok: false, status: 0, data: { code: "network", message: "The server cannot be reached." } };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (response.status === 401 || (response.status === 403 && data && data.code === "not_authenticated")) {
      location.href = loginUrl + "?next=" + encodeURIComponent(location.pathname);
    }
    return { ok: response.ok, status: response.status, data: data || {} };
  };
}

/** One key per composed reply: a repeated send of it (double Enter, a retry) creates one message. */
export function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Runs fn for key once at a time; calls made meanwhile collapse into one more run after it.
const running = new Map();
export function coalesce(key, fn) {
  const current = running.get(key);
  if (current) {
    current.again = true;
    return;
  }
  const job = { again: false };
  running.set(key, job);
  (async () => {
    try {
      do {
        job.again = false;
        await fn();
      } while (job.again);
    } finally {
      running.delete(key);
    }
  })();
}
