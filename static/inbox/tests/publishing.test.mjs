import assert from "node:assert/strict";
import { test } from "node:test";

import { merge, newer, percent } from "../../../tiktok_channel/static/publishing/state.js";

const uploading = { post_id: 1, status: "uploading", version: 3, bytes_done: 10, file_size: 40, note: "x" };

test("percent of the file TikTok holds", () => {
  assert.equal(percent(uploading), 25);
  assert.equal(percent({ ...uploading, status: "processing", bytes_done: 0 }), 100);
  assert.equal(percent({ ...uploading, file_size: 0 }), 0);
});

test("a hint moves the row forward, an older one is ignored", () => {
  const event = { post_id: 1, status: "uploading", version: 4, bytes_done: 20, chunks_done: 2, chunk_count: 4 };
  const next = merge(uploading, event);
  assert.equal(next.bytes_done, 20);
  assert.equal(next.note, "Uploaded 2 of 4 chunks.");
  assert.equal(merge(next, { ...event, version: 4, bytes_done: 5 }), null);
  assert.equal(merge(next, { ...event, version: 2 }), null);
  const failed = merge(next, { post_id: 1, status: "failed", version: 5, reason: "TikTok refused it" });
  assert.equal(failed.note, "TikTok refused it");
});

test("a fetched row replaces the page's copy unless the page has a newer one", () => {
  assert.equal(newer(undefined, uploading), true);
  assert.equal(newer({ version: 5 }, uploading), false);
  assert.equal(newer({ version: 3 }, uploading), true);
});
