// The Posts page's pure helpers (tiktok_channel/static/posts/format.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { ago, compact, followersChart, growthText, signed, videoChart } from "../../../tiktok_channel/static/posts/format.js";

test("figures are compact above 10 000 and exact below", () => {
  assert.equal(compact(9999), "9999");
  assert.equal(compact(12345), "12.3K");
  assert.equal(compact(2500000), "2.5M");
  assert.equal(compact(null), "–");
});

test("a change is signed, and unknown is a dash", () => {
  assert.equal(signed(12), "+12");
  assert.equal(signed(-3), "−3");
  assert.equal(signed(0), "±0");
  assert.equal(signed(undefined), "–");
});

test("growth names the snapshot it compares with", () => {
  const growth = { day: { since: "2026-11-29", views: 40 }, week: null };
  assert.equal(growthText(growth, "views"), "+40 since 2026-11-29");
  assert.equal(growthText({ day: null, week: null }, "views"), "no earlier snapshot yet");
});

test("chart shapes carry their rows and a table column per series", () => {
  const account = { name: "Shop", series: [{ day: "2026-11-30", followers: 10 }] };
  const chart = followersChart(account);
  assert.deepEqual(chart.series, ["followers"]);
  assert.equal(chart.rows, account.series);
  const video = videoChart({ video_id: "7", series: [] });
  assert.deepEqual(video.columns.map((c) => c.key), ["day", "views", "likes", "comments", "shares"]);
});

test("ages are relative to now", () => {
  const now = Date.parse("2026-11-30T12:00:00Z");
  assert.equal(ago("2026-11-30T11:58:00Z", now), "2 min ago");
  assert.equal(ago(null, now), "never");
});
