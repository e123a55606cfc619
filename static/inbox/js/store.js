// The page's state and every rule about changing it, without the DOM: unit-tested with `node --test`.
//
// Push is a hint, REST is the truth: the store keeps the newest `version` of each conversation and message
// it has seen and refuses older ones, whatever order fetches answer in.

export const TABS = ["mine", "unassigned", "all"];
export const STATUSES = ["open", "pending", "resolved"];
export const ORDERINGS = ["last_activity", "window", "sla"];
export const MODES = ["reply", "note"];
export const KINDS = ["", "message", "comment"]; // "": direct messages and comments alike

/** Filters from the URL's query (bookmarkable) first, then the ones last used, then defaults. */
export function parseFilters(search, saved = {}) {
  const params = new URLSearchParams(search || "");
  const pick = (name, allowed, fallback) => {
    const value = params.get(name);
    if (allowed.includes(value)) return value;
    return allowed.includes(saved[name]) ? saved[name] : fallback;
  };
  return {
    tab: pick("tab", TABS, "all"),
    status: pick("status", STATUSES, "open"),
    ordering: pick("ordering", ORDERINGS, "last_activity"),
    q: (params.get("q") || "").slice(0, 200),
    label: (params.get("label") || "").slice(0, 50),
    team: /^\d{1,18}$/.test(params.get("team") || "") ? params.get("team") : "", // a team's id
    kind: KINDS.includes(params.get("kind")) ? params.get("kind") : "",
  };
}

/** The query string that reproduces the list's filters (for the address bar); empty for the defaults. */
export function filtersQuery(state) {
  const params = new URLSearchParams();
  if (state.tab !== "all") params.set("tab", state.tab);
  if (state.status !== "open") params.set("status", state.status);
  if (state.ordering !== "last_activity") params.set("ordering", state.ordering);
  if (state.q) params.set("q", state.q);
  if (state.label) params.set("label", state.label);
  if (state.team) params.set("team", state.team);
  if (state.kind) params.set("kind", state.kind);
  const query = params.toString();
  return query ? "?" + query : "";
}

export function createState({ me, filters }) {
  return {
    me,
    ...filters,
    convs: new Map(), // id -> conversation (detail or list shape), newest version seen
    order: [], // ids shown in the list, in order
    next: null, // cursor URL of the list's next page
    listSeq: 0,
    currentId: null,
    contact: null,
    messages: new Map(), // id -> message of the open thread
    messagesNext: null,
    threadSeq: 0,
    positioned: false, // the open thread has been scrolled to its latest message once
    quote: null,
    image: null,
    shareMode: false,
    mode: "reply",
    pane: "list", // phones show one pane at a time: list, thread or details
    panelOpen: false,
    composeKey: null, // the Idempotency-Key of the reply being composed
    labels: [], // every label of the agent's inboxes: {id, inbox_id, name, color}
    teams: [], // every team of the agent's inboxes: {id, inbox, name, members}
    canned: { conversationId: null, items: [], open: false, index: 0, start: 0 },
  };
}

/** Keeps the newest version of a conversation; false when `conv` is older than what is shown. */
export function storeConv(state, conv) {
  const shown = state.convs.get(conv.id);
  if (shown && conv.version < shown.version) return false;
  state.convs.set(conv.id, shown && shown.referral_data && !conv.referral_data ? { ...shown, ...conv } : conv);
  return true;
}

export function matchesFilters(state, conv) {
  if (state.status && conv.status !== state.status) return false;
  if (state.tab === "mine" && !(conv.assignee && conv.assignee.id === state.me)) return false;
  if (state.tab === "unassigned" && conv.assignee) return false;
  if (state.label && !(conv.labels || []).some((name) => name.toLowerCase() === state.label.toLowerCase())) return false;
  if (state.team && !(conv.team && String(conv.team.id) === String(state.team))) return false;
  if (state.kind && (conv.kind || "message") !== state.kind) return false;
  return true;
}

const FAR = 100 * 365 * 86400000;

function sortKey(state, conv, now, windowHours) {
  if (state.ordering === "sla") {
    // First-response SLA: the most overdue / soonest due first, conversations with nothing due after.
    return [conv.first_response_due_at ? new Date(conv.first_response_due_at).getTime() : now + FAR, conv.id];
  }
  if (state.ordering === "window") {
    if (!conv.last_inbound_at) return [now + 2 * FAR, conv.id];
    const t = new Date(conv.last_inbound_at).getTime();
    return [now - t < windowHours * 3600000 ? t : t + FAR, conv.id];
  }
  return [-new Date(conv.last_activity_at).getTime(), -conv.id];
}

export function compareConvs(state, a, b, now, windowHours) {
  const ka = sortKey(state, a, now, windowHours);
  const kb = sortKey(state, b, now, windowHours);
  return ka[0] - kb[0] || ka[1] - kb[1];
}

/**
 * Puts a changed conversation where it belongs in the loaded list. Returns "placed", "removed",
 * "later" (it sorts after the loaded rows: a later page has it) or "reload" (only the server knows
 * whether it matches the search).
 */
export function placeInList(state, conv, now, windowHours) {
  const index = state.order.indexOf(conv.id);
  if (index >= 0) state.order.splice(index, 1);
  if (!matchesFilters(state, conv)) return "removed";
  if (state.q && index < 0) return "reload";
  const others = state.order.map((id) => state.convs.get(id));
  let at = others.findIndex((other) => compareConvs(state, conv, other, now, windowHours) < 0);
  if (at < 0) {
    if (state.next) return "later";
    at = others.length;
  }
  state.order.splice(at, 0, conv.id);
  return "placed";
}

export function listParams(state) {
  const params = new URLSearchParams({ status: state.status, ordering: state.ordering, page_size: "40" });
  if (state.tab === "mine") params.set("assignee", "me");
  if (state.tab === "unassigned") params.set("assignee", "none");
  if (state.q) params.set("q", state.q);
  if (state.label) params.set("label", state.label);
  if (state.team) params.set("team", state.team);
  if (state.kind) params.set("kind", state.kind);
  return params;
}

/** The neighbour of the open conversation in the list (j: +1, k: -1), or null. */
export function neighbour(state, step) {
  if (!state.order.length) return null;
  const index = state.order.indexOf(state.currentId);
  if (index < 0) return state.order[step > 0 ? 0 : state.order.length - 1];
  return state.order[index + step] ?? null;
}

export function unreadConversations(state) {
  return state.order.reduce((n, id) => n + (state.convs.get(id).unread_count > 0 ? 1 : 0), 0);
}

export function openThread(state, id) {
  const switching = id !== state.currentId;
  state.currentId = id;
  if (switching) {
    state.messages = new Map();
    state.messagesNext = null;
    state.contact = null;
    state.positioned = false;
    state.quote = null;
    state.shareMode = false;
    state.mode = "reply";
    state.composeKey = null;
  }
  state.pane = "thread";
  return switching;
}

export function storeMessage(state, message) {
  const shown = state.messages.get(message.id);
  if (shown && message.version < shown.version) return false;
  state.messages.set(message.id, message);
  return true;
}

export function sortedMessages(state) {
  return Array.from(state.messages.values()).sort((a, b) => new Date(a.sent_at) - new Date(b.sent_at) || a.id - b.id);
}

/** Reactions point at the message they react to; the latest action per emoji wins (ADDED / REMOVED). */
export function reactionsByTarget(messages) {
  const byTarget = new Map();
  for (const message of messages) {
    if (message.type !== "reaction" || !message.quoted_message_id) continue;
    const emojis = byTarget.get(message.quoted_message_id) || new Map();
    const removed = /remove|unreact|delete/i.test((message.reaction && message.reaction.action) || "");
    const emoji = (message.reaction && message.reaction.emoji) || message.text || "❤";
    if (removed) emojis.delete(emoji);
    else emojis.set(emoji, message);
    byTarget.set(message.quoted_message_id, emojis);
  }
  return byTarget;
}

/**
 * Why the composer cannot send now, from the server's words: its `reply_lock`, or, once the page's clock
 * passes `reply_window_closes_at`, its `reply_window_closed_reason`. Notes are never locked.
 */
export function lockReason(conv, mode, now) {
  if (!conv || mode === "note") return "";
  if (conv.reply_lock) return conv.reply_lock.message;
  const closes = conv.reply_window_closes_at ? new Date(conv.reply_window_closes_at).getTime() : null;
  if (closes !== null && now >= closes) return conv.reply_window_closed_reason || "";
  return "";
}

/** The composer's counter: characters used of the limit the server gave, and what to say about it. */
/** The longest reply the open conversation takes: the page's limit, or less where the provider says so
 * (a comment reply on TikTok is at most 150 characters). */
export function replyMaxChars(conv, pageLimit) {
  return conv && conv.reply_max_chars ? Math.min(conv.reply_max_chars, pageLimit) : pageLimit;
}

export function textCounter(text, max) {
  const count = Array.from(text).length; // the server counts code points, as Python's len()
  const left = max - count;
  if (left < 0) {
    return { count, max, over: true, warn: true, label: count + " / " + max + " — " + -left + " too many: shorten it to send" };
  }
  return { count, max, over: false, warn: left <= max * 0.1, label: count + " / " + max };
}

/** What Send posts: an image, a shared post and text each go as their own message; the quote goes with text. */
export function outgoingReplies({ text, image, postId, quote }) {
  const outgoing = [];
  if (image) outgoing.push({ type: "image", image });
  if (postId) outgoing.push({ type: "share_post", post_id: postId });
  if (text.trim()) outgoing.push({ type: "text", text, ...(quote ? { quoted_message_id: quote } : {}) });
  return outgoing;
}

/** The time a snooze preset means, in the agent's local time: 1h, 3h, tomorrow 09:00, next Monday 09:00. */
export function snoozeUntil(choice, now) {
  const at = new Date(now);
  if (choice === "1h") return new Date(now + 3600000);
  if (choice === "3h") return new Date(now + 3 * 3600000);
  if (choice === "tomorrow") at.setDate(at.getDate() + 1);
  else if (choice === "week") at.setDate(at.getDate() + (((8 - at.getDay()) % 7) || 7));
  else return null;
  at.setHours(9, 0, 0, 0);
  return at;
}

/** The label of an inbox with this name (any case), for its colour. */
export function findLabel(labels, inboxId, name) {
  const lower = name.toLowerCase();
  return labels.find((label) => label.inbox_id === inboxId && label.name.toLowerCase() === lower) || null;
}

/** The inbox's labels a conversation does not have yet (what "+ Label" offers). */
export function labelsToAdd(labels, conv) {
  const have = new Set((conv.labels || []).map((name) => name.toLowerCase()));
  return labels.filter((label) => label.inbox_id === conv.inbox.id && !have.has(label.name.toLowerCase()));
}

/** A `/code` being typed at the caret (at the start or after a space): {start, query}, else null. */
export function cannedQuery(text, caret) {
  const before = text.slice(0, caret);
  const match = before.match(/(^|\s)\/([a-z0-9_-]*)$/i);
  if (!match) return null;
  return { start: caret - match[2].length - 1, query: match[2].toLowerCase() };
}

/** Canned responses whose short code starts with the query first, then those containing it (code or text). */
export function filterCanned(items, query) {
  const starts = items.filter((item) => item.short_code.startsWith(query));
  const contains = items.filter((item) => !item.short_code.startsWith(query) && (item.short_code.includes(query) || item.text.toLowerCase().includes(query)));
  return [...starts, ...contains].slice(0, 8);
}

/** The composer text with `/query` (from `start` to the caret) replaced by the response. */
export function insertCanned(text, start, caret, rendered) {
  const value = text.slice(0, start) + rendered + text.slice(caret);
  return { value, caret: start + rendered.length };
}

export function draftKey(conversationId) {
  return "inbox.draft." + conversationId;
}

/** The list row's SLA chip: time left to the first response, or how long it is overdue; null when nothing is due. */
export function slaState(conv, now) {
  if (!conv.first_response_due_at || conv.status === "resolved") return null;
  const left = new Date(conv.first_response_due_at).getTime() - now;
  return { overdue: left <= 0, ms: Math.abs(left), soon: left > 0 && left < 5 * 60000 };
}

const PUBLIC_BADGES = { hidden: "Hidden", deleted: "Deleted" };
const ACTION_WORKING = { hide: "Hiding on TikTok…", unhide: "Showing again on TikTok…", delete: "Deleting on TikTok…" };
const ACTION_NAMES = { hide: "Hide", unhide: "Unhide", delete: "Delete" };

/** What a public comment's row shows of its moderation: a badge (hidden / deleted), what is under way, why the last
 * request failed, and the actions the server offers now. */
export function commentModeration(message) {
  const action = message.action || null;
  const state = action ? action.state : "";
  return {
    badge: PUBLIC_BADGES[message.public_state] || "",
    working: state === "pending" ? ACTION_WORKING[action.action] || "Working…" : "",
    failure: state === "failed" ? (ACTION_NAMES[action.action] || action.action) + " failed: " + ((action.error && action.error.description) || "TikTok refused it.") : "",
    actions: (message.actions || []).map((name) => ({ name, label: ACTION_NAMES[name] || name })),
  };
}

/** The team filter's choices, by name; with the inbox's name where two of the agent's inboxes have a team of one name. */
export function teamChoices(teams) {
  const count = new Map();
  for (const team of teams) count.set(team.name.toLowerCase(), (count.get(team.name.toLowerCase()) || 0) + 1);
  return teams
    .map((team) => ({ value: String(team.id), text: count.get(team.name.toLowerCase()) > 1 ? team.name + " · " + team.inbox_name : team.name }))
    .sort((a, b) => a.text.localeCompare(b.text));
}
