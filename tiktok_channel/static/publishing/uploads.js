// The uploads page: the list comes from the server (REST is the truth); `post.updated` hints on the inbox
// websocket move a row's status and progress bar live, an older version than the row's is ignored.
import { merge, newer, percent } from "./state.js";

const config = JSON.parse(document.getElementById("uploads-config").textContent);
const list = document.getElementById("uploads");
const empty = document.getElementById("uploads-empty");
const liveNote = document.getElementById("uploads-live");
const rows = new Map(); // post id -> {data, element}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function render(post) {
  let entry = rows.get(post.post_id);
  if (!entry) {
    const element = el("li", "upload");
    element.dataset.postId = String(post.post_id);
    entry = { data: post, element };
    rows.set(post.post_id, entry);
    list.prepend(element);
  }
  const data = entry.data;
  const node = entry.element;
  node.replaceChildren();
  node.dataset.status = data.status;
  const head = el("div", "upload-head");
  head.append(el("strong", "upload-title", data.title || data.file_name || "(no caption)"));
  head.append(el("span", `upload-status status-${data.status}`, data.status_label || data.status));
  node.append(head);
  node.append(el("div", "upload-meta muted small", `${data.kind === "photo" ? "Photos" : "Video"} · ${data.account} · ${data.privacy}`));
  const bar = el("progress", "upload-progress");
  bar.max = 100;
  bar.value = percent(data);
  bar.setAttribute("aria-label", "Upload progress");
  node.append(bar);
  const chunks = data.chunk_count ? ` · chunk ${data.chunks_done} of ${data.chunk_count}` : "";
  node.append(el("div", "upload-percent small", `${percent(data)} %${chunks}`));
  node.append(el("p", `upload-note small${data.status === "failed" ? " post-error" : ""}`, data.note || data.reason || ""));
}

function apply(event) {
  const entry = rows.get(event.post_id);
  if (!entry) {
    refresh(); // a post this page has not seen yet
    return;
  }
  const next = merge(entry.data, event);
  if (!next) return;
  entry.data = next;
  if (event.status !== "uploading") refresh(); // the server's sentence for the new state
  render(entry.data);
}

let fetching = null;
async function refresh() {
  if (fetching) return fetching;
  fetching = (async () => {
    try {
      const response = await fetch(config.data, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const body = await response.json();
      for (const post of body.posts.slice().reverse()) {
        const entry = rows.get(post.post_id);
        if (!newer(entry && entry.data, post)) continue;
        if (entry) entry.data = post;
        render(post);
      }
      empty.hidden = rows.size > 0;
    } finally {
      fetching = null;
    }
  })();
  return fetching;
}

let attempt = 0;
function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + location.host + config.ws_path);
  socket.addEventListener("message", (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch (e) {
      return;
    }
    if (event.type === "hello") {
      attempt = 0;
      liveNote.textContent = "Live: progress updates as it happens.";
      refresh(); // what was missed while disconnected
    } else if (event.type === "post.updated") {
      apply(event);
    }
  });
  socket.addEventListener("close", () => {
    liveNote.textContent = "Reconnecting…";
    attempt += 1;
    setTimeout(connect, Math.min(30000, 1000 * 2 ** attempt));
  });
}

refresh();
connect();
// A backstop while something is in flight (push is a hint): the status polls of TikTok run for minutes.
setInterval(() => {
  for (const { data } of rows.values()) {
    if (data.status !== "published" && data.status !== "failed") {
      refresh();
      return;
    }
  }
}, 15000);
