// The page's state rules, without a browser: `node --test static/inbox/tests/`.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  replyMaxChars,
  listParams,
  createState,
  filtersQuery,
  lockReason,
  neighbour,
  openThread,
  outgoingReplies,
  parseFilters,
  slaState,
  placeInList,
  reactionsByTarget,
  sortedMessages,
  storeConv,
  storeMessage,
  cannedQuery,
  filterCanned,
  findLabel,
  insertCanned,
  labelsToAdd,
  teamChoices,
  matchesFilters,
  snoozeUntil,
  textCounter,
  unreadConversations,
  commentModeration,
} from "../js/store.js";

const NOW = Date.parse("2026-11-30T12:00:00Z");
const HOURS = 48;
const ME = 7;

function conv(id, fields = {}) {
  return {
    id,
    version: 1,
    status: "open",
    assignee: null,
    unread_count: 0,
    last_activity_at: new Date(NOW - id * 60000).toISOString(),
    last_inbound_at: new Date(NOW - id * 60000).toISOString(),
    ...fields,
  };
}

function stateWith(...convs) {
  const state = createState({ me: ME, filters: parseFilters("", {}) });
  for (const c of convs) {
    storeConv(state, c);
    state.order.push(c.id);
  }
  return state;
}

test("filters come from the URL first, then the saved ones, then defaults; bad values are ignored", () => {
  assert.deepEqual(parseFilters("?tab=mine&status=pending&q=berlin", { tab: "all" }), {
    tab: "mine",
    status: "pending",
    ordering: "last_activity",
    q: "berlin",
    label: "",
    team: "",
    kind: "",
  });
  assert.deepEqual(parseFilters("?tab=evil", { tab: "unassigned", ordering: "window" }), {
    tab: "unassigned",
    status: "open",
    ordering: "window",
    q: "",
    label: "",
    team: "",
    kind: "",
  });
  const state = stateWith();
  Object.assign(state, { tab: "mine", status: "resolved", q: "a b" });
  assert.equal(filtersQuery(state), "?tab=mine&status=resolved&q=a+b");
  assert.deepEqual(parseFilters(filtersQuery(state), {}).q, "a b");
  assert.equal(filtersQuery(stateWith()), ""); // the defaults keep the address clean
});

test("an older version of a conversation never replaces a newer one", () => {
  const state = stateWith(conv(1, { version: 5, status: "open" }));
  assert.equal(storeConv(state, conv(1, { version: 4, status: "resolved" })), false);
  assert.equal(state.convs.get(1).status, "open");
  assert.equal(storeConv(state, conv(1, { version: 6, status: "resolved" })), true);
  assert.equal(state.convs.get(1).status, "resolved");
});

test("a changed conversation moves to its place, leaves a filter it no longer matches, waits for search", () => {
  const state = stateWith(conv(1), conv(2), conv(3));
  const bumped = conv(3, { version: 2, last_activity_at: new Date(NOW).toISOString() });
  storeConv(state, bumped);
  assert.equal(placeInList(state, bumped, NOW, HOURS), "placed");
  assert.deepEqual(state.order, [3, 1, 2]);
  const resolved = conv(1, { version: 2, status: "resolved" });
  storeConv(state, resolved);
  assert.equal(placeInList(state, resolved, NOW, HOURS), "removed");
  assert.deepEqual(state.order, [3, 2]);
  state.q = "berlin";
  assert.equal(placeInList(state, conv(9), NOW, HOURS), "reload");
  state.q = "";
  state.next = "/api/v1/conversations/?cursor=x";
  assert.equal(placeInList(state, conv(99), NOW, HOURS), "later");
});

test("Mine and Unassigned hold only what they say", () => {
  const state = stateWith();
  state.tab = "mine";
  assert.equal(placeInList(state, conv(1, { assignee: { id: 8 } }), NOW, HOURS), "removed");
  storeConv(state, conv(2, { assignee: { id: ME } }));
  assert.equal(placeInList(state, conv(2, { assignee: { id: ME } }), NOW, HOURS), "placed");
  state.tab = "unassigned";
  assert.equal(placeInList(state, conv(2, { assignee: { id: ME } }), NOW, HOURS), "removed");
});

test("window ordering: open windows soonest to close first, closed and never-opened after", () => {
  const state = stateWith();
  state.ordering = "window";
  const closed = conv(1, { last_inbound_at: new Date(NOW - 50 * 3600000).toISOString() });
  const soon = conv(2, { last_inbound_at: new Date(NOW - 47 * 3600000).toISOString() });
  const fresh = conv(3, { last_inbound_at: new Date(NOW - 3600000).toISOString() });
  const never = conv(4, { last_inbound_at: null });
  for (const c of [never, closed, fresh, soon]) {
    storeConv(state, c);
    placeInList(state, c, NOW, HOURS);
  }
  assert.deepEqual(state.order, [2, 3, 1, 4]);
});

test("sla ordering: most overdue first, then soonest due, nothing due last; the chip says left or overdue", () => {
  const state = stateWith();
  state.ordering = "sla";
  const overdue = conv(1, { first_response_due_at: new Date(NOW - 600000).toISOString() });
  const soon = conv(2, { first_response_due_at: new Date(NOW + 120000).toISOString() });
  const later = conv(3, { first_response_due_at: new Date(NOW + 3600000).toISOString() });
  const none = conv(4, { first_response_due_at: null });
  for (const c of [none, later, overdue, soon]) {
    storeConv(state, c);
    placeInList(state, c, NOW, HOURS);
  }
  assert.deepEqual(state.order, [1, 2, 3, 4]);
  assert.deepEqual(slaState(overdue, NOW), { overdue: true, ms: 600000, soon: false });
  assert.deepEqual(slaState(soon, NOW), { overdue: false, ms: 120000, soon: true });
  assert.equal(slaState(none, NOW), null);
  assert.equal(slaState({ ...overdue, status: "resolved" }, NOW), null);
});

test("j/k walk the list from the open conversation", () => {
  const state = stateWith(conv(1), conv(2), conv(3));
  assert.equal(neighbour(state, 1), 1);
  state.currentId = 2;
  assert.equal(neighbour(state, 1), 3);
  assert.equal(neighbour(state, -1), 1);
  state.currentId = 3;
  assert.equal(neighbour(state, 1), null);
});

test("unread counts conversations, not messages", () => {
  assert.equal(unreadConversations(stateWith(conv(1, { unread_count: 3 }), conv(2), conv(3, { unread_count: 1 }))), 2);
});

test("opening another conversation forgets the previous thread and composer", () => {
  const state = stateWith(conv(1), conv(2));
  openThread(state, 1);
  storeMessage(state, { id: 10, version: 1, sent_at: "2026-11-30T10:00:00Z" });
  Object.assign(state, { positioned: true, quote: 10, mode: "note", composeKey: "k" });
  assert.equal(openThread(state, 1), false);
  assert.equal(state.messages.size, 1);
  assert.equal(openThread(state, 2), true);
  assert.deepEqual([state.messages.size, state.positioned, state.quote, state.mode, state.composeKey], [0, false, null, "reply", null]);
  assert.equal(state.pane, "thread");
});

test("messages keep their newest version and sort by time then id", () => {
  const state = stateWith();
  storeMessage(state, { id: 2, version: 13, sent_at: "2026-11-30T10:00:00Z" });
  storeMessage(state, { id: 1, version: 10, sent_at: "2026-11-30T10:00:00Z" });
  storeMessage(state, { id: 3, version: 10, sent_at: "2026-11-30T09:00:00Z" });
  assert.equal(storeMessage(state, { id: 2, version: 12, sent_at: "2026-11-30T10:00:00Z" }), false);
  assert.deepEqual(
    sortedMessages(state).map((m) => [m.id, m.version]),
    [
      [3, 10],
      [1, 10],
      [2, 13],
    ]
  );
});

test("the latest reaction per emoji wins", () => {
  const reactions = reactionsByTarget([
    { id: 1, type: "reaction", quoted_message_id: 9, reaction: { emoji: "❤️", action: "ADDED" } },
    { id: 2, type: "reaction", quoted_message_id: 9, reaction: { emoji: "👍", action: "ADDED" } },
    { id: 3, type: "reaction", quoted_message_id: 9, reaction: { emoji: "❤️", action: "REMOVED" } },
  ]);
  assert.deepEqual(Array.from(reactions.get(9).keys()), ["👍"]);
});

test("the lock reason is the server's: its reply_lock, or its closed-window reason once the clock passes", () => {
  const closes = new Date(NOW + 1000).toISOString();
  const open = { reply_lock: null, reply_window_closes_at: closes, reply_window_closed_reason: "The window closed." };
  assert.equal(lockReason(open, "reply", NOW), "");
  assert.equal(lockReason(open, "reply", NOW + 1000), "The window closed.");
  assert.equal(lockReason({ ...open, reply_lock: { code: "reply_quota_used", message: "All used." } }, "reply", NOW), "All used.");
  assert.equal(lockReason({ ...open, reply_lock: { code: "x", message: "Locked." } }, "note", NOW + 5000), "");
  assert.equal(lockReason(undefined, "reply", NOW), "");
});

test("the counter counts characters as the server does and says when the text is too long", () => {
  assert.deepEqual(textCounter("hi", 10), { count: 2, max: 10, over: false, warn: false, label: "2 / 10" });
  assert.equal(textCounter("📦📦", 2).over, false); // two characters, four UTF-16 units
  assert.equal(textCounter("123456789", 10).warn, true);
  const over = textCounter("x".repeat(6001), 6000);
  assert.equal(over.over, true);
  assert.match(over.label, /1 too many/);
});

test("an image, a shared post and text go as separate replies; a quote goes only with text", () => {
  const image = { name: "a.png" };
  assert.deepEqual(outgoingReplies({ text: "hi", image, postId: "", quote: 4 }), [
    { type: "image", image },
    { type: "text", text: "hi", quoted_message_id: 4 },
  ]);
  assert.deepEqual(outgoingReplies({ text: "  ", image: null, postId: "73", quote: 4 }), [{ type: "share_post", post_id: "73" }]);
  assert.deepEqual(outgoingReplies({ text: "", image: null, postId: "", quote: null }), []);
});

test("snooze presets", () => {
  const monday = new Date(2026, 10, 30, 15, 30).getTime(); // Monday 30 Nov 2026, 15:30 local
  assert.equal(snoozeUntil("1h", monday).getTime(), monday + 3600000);
  const tomorrow = snoozeUntil("tomorrow", monday);
  assert.deepEqual([tomorrow.getDate(), tomorrow.getHours(), tomorrow.getMinutes()], [1, 9, 0]);
  const week = snoozeUntil("week", monday);
  assert.deepEqual([week.getDay(), week.getDate(), week.getMonth(), week.getHours()], [1, 7, 11, 9]);
  assert.equal(snoozeUntil("bogus", monday), null);
});

test("labels: filter, colours by inbox and name, what can still be added", () => {
  const labels = [
    { id: 1, inbox_id: 1, name: "VIP", color: "#fe2c55" },
    { id: 2, inbox_id: 1, name: "Refund", color: "#25f4ee" },
    { id: 3, inbox_id: 2, name: "VIP", color: "#000000" },
  ];
  assert.equal(findLabel(labels, 2, "vip").color, "#000000");
  assert.equal(findLabel(labels, 1, "nope"), null);
  const c = conv(1, { inbox: { id: 1 }, labels: ["vip"] });
  assert.deepEqual(labelsToAdd(labels, c).map((l) => l.id), [2]);
  const state = stateWith();
  state.label = "VIP";
  assert.equal(matchesFilters(state, c), true);
  assert.equal(matchesFilters(state, conv(2, { labels: [] })), false);
  assert.equal(parseFilters("?label=VIP", {}).label, "VIP");
});

test("teams: the filter from the address, sent to the API, applied to live updates; choices name the inbox on a clash", () => {
  assert.equal(parseFilters("?team=7").team, "7");
  assert.equal(parseFilters("?team=billing").team, "");
  const state = createState({ me: 1, filters: parseFilters("?team=7") });
  assert.match(filtersQuery(state), /team=7/);
  assert.equal(listParams(state).get("team"), "7");
  assert.equal(matchesFilters(state, { status: "open", labels: [], team: { id: 7, name: "Billing" } }), true);
  assert.equal(matchesFilters(state, { status: "open", labels: [], team: { id: 8, name: "Sales" } }), false);
  assert.equal(matchesFilters(state, { status: "open", labels: [], team: null }), false);
  assert.equal(listParams(createState({ me: 1, filters: parseFilters("") })).has("team"), false);
  const teams = [
    { id: 2, inbox: 1, inbox_name: "Support", name: "Sales" },
    { id: 1, inbox: 1, inbox_name: "Support", name: "Billing" },
    { id: 3, inbox: 2, inbox_name: "Shop", name: "billing" },
  ];
  assert.deepEqual(teamChoices(teams), [
    { value: "3", text: "billing · Shop" },
    { value: "1", text: "Billing · Support" },
    { value: "2", text: "Sales" },
  ]);
});

test("canned: the /code at the caret, filtering, inserting", () => {
  assert.deepEqual(cannedQuery("/th", 3), { start: 0, query: "th" });
  assert.deepEqual(cannedQuery("Hi /Th", 6), { start: 3, query: "th" });
  assert.deepEqual(cannedQuery("/", 1), { start: 0, query: "" });
  assert.equal(cannedQuery("and/or", 6), null);
  assert.equal(cannedQuery("/th x", 5), null);
  const items = [
    { short_code: "ship", text: "We ship in 2 days" },
    { short_code: "thanks", text: "Thanks!" },
    { short_code: "hours", text: "Open 9-5; thanks" },
  ];
  assert.deepEqual(filterCanned(items, "th").map((i) => i.short_code), ["thanks", "hours"]);
  assert.deepEqual(filterCanned(items, "").length, 3);
  assert.deepEqual(insertCanned("Hi /th!", 3, 6, "Thanks Mia"), { value: "Hi Thanks Mia!", caret: 13 });
});

test("the Comments filter: read from the address, kept in it, sent to the API, applied to live updates", () => {
  const filters = parseFilters("?kind=comment");
  assert.equal(filters.kind, "comment");
  assert.equal(parseFilters("?kind=post").kind, "");
  const state = createState({ me: 1, filters });
  assert.match(filtersQuery(state), /kind=comment/);
  assert.equal(listParams(state).get("kind"), "comment");
  assert.equal(matchesFilters(state, { status: "open", kind: "comment", labels: [] }), true);
  assert.equal(matchesFilters(state, { status: "open", kind: "message", labels: [] }), false);
  assert.equal(listParams(createState({ me: 1, filters: parseFilters("") })).has("kind"), false);
});

test("a comment reply's limit is the conversation's, never above the page's", () => {
  assert.equal(replyMaxChars({ reply_max_chars: 150 }, 6000), 150);
  assert.equal(replyMaxChars({ reply_max_chars: 9000 }, 6000), 6000);
  assert.equal(replyMaxChars({}, 6000), 6000);
  assert.equal(replyMaxChars(null, 6000), 6000);
});

test("a comment's moderation: badge, work under way, the refusal's reason, the server's actions", () => {
  const visible = commentModeration({ public_state: "visible", action: null, actions: ["hide"] });
  assert.deepEqual(visible, { badge: "", working: "", failure: "", actions: [{ name: "hide", label: "Hide" }] });
  const hiding = commentModeration({ public_state: "visible", action: { action: "hide", state: "pending", error: null }, actions: [] });
  assert.equal(hiding.working, "Hiding on TikTok…");
  assert.deepEqual(hiding.actions, []);
  const hidden = commentModeration({ public_state: "hidden", action: { action: "hide", state: "done", error: null }, actions: ["unhide"] });
  assert.equal(hidden.badge, "Hidden");
  assert.equal(hidden.working, "");
  const refused = commentModeration({
    public_state: "hidden",
    action: { action: "unhide", state: "failed", error: { name: "TIKTOK_40002", description: "Comment is under review" } },
    actions: ["unhide"],
  });
  assert.equal(refused.failure, "Unhide failed: Comment is under review");
  assert.equal(commentModeration({ public_state: "deleted", actions: [] }).badge, "Deleted");
  assert.deepEqual(commentModeration({ direction: "in" }), { badge: "", working: "", failure: "", actions: [] });
});
