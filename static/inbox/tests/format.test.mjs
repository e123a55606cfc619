import assert from "node:assert/strict";
import { test } from "node:test";

import { contactName, duration, initials, previewText, shortAgo, snippet, windowLeft } from "../js/format.js";

const NOW = Date.parse("2026-11-30T12:00:00Z");

test("short ages", () => {
  assert.equal(shortAgo(new Date(NOW - 30000).toISOString(), NOW), "now");
  assert.equal(shortAgo(new Date(NOW - 5 * 60000).toISOString(), NOW), "5m");
  assert.equal(shortAgo(new Date(NOW - 3 * 3600000).toISOString(), NOW), "3h");
  assert.equal(shortAgo(new Date(NOW - 2 * 86400000).toISOString(), NOW), "2d");
  assert.equal(shortAgo(null, NOW), "");
});

test("durations", () => {
  assert.equal(duration(3 * 3600000 + 5 * 60000 + 7000, true), "3:05:07");
  assert.equal(duration(3 * 3600000 + 5 * 60000), "3h 05m");
  assert.equal(duration(30000), "<1m");
  assert.equal(duration(-5), "<1m");
});

test("window left", () => {
  assert.equal(windowLeft({ reply_window_closes_at: null }, NOW), null);
  assert.equal(windowLeft({ reply_window_closes_at: new Date(NOW + 5000).toISOString() }, NOW), 5000);
});

test("names, initials, previews", () => {
  assert.equal(contactName({ display_name: "", tiktok_user_id: "tt-1" }), "tt-1");
  assert.equal(contactName(null), "TikTok user");
  assert.equal(initials("mia rose"), "MR");
  assert.equal(initials("   "), "?");
  assert.equal(previewText({ direction: "out", type: "text", text: "a\n b" }), "You: a b");
  assert.equal(previewText({ direction: "note", type: "text", text: "vip" }), "Note: vip");
  assert.equal(previewText({ direction: "in", type: "image", text: "" }), "📷 Photo");
  assert.equal(previewText(null), "No messages yet");
  assert.equal(snippet({ type: "text", text: "x".repeat(100) }).length, 91);
});
