import assert from "node:assert/strict";
import { test } from "node:test";

import { cellText, linePath, niceMax, queryOf } from "../js/report-charts.js";

test("cells read like the CSV export", () => {
  assert.equal(cellText(20, "min"), "20.0");
  assert.equal(cellText(33.333, "%"), "33.3");
  assert.equal(cellText(null, "min"), "");
  assert.equal(cellText(0, ""), "0");
  assert.equal(cellText("Ad · Winter sale", ""), "Ad · Winter sale");
  assert.equal(cellText(4, "avg"), "4.00"); // an average rating: two decimals, as cell_text writes it
  assert.equal(cellText(4.333, "avg"), "4.33");
});

test("axis maxima are round", () => {
  assert.equal(niceMax(0), 1);
  assert.equal(niceMax(7), 10);
  assert.equal(niceMax(13), 20);
  assert.equal(niceMax(41), 50);
  assert.equal(niceMax(100), 100);
});

test("the query keeps only what is set, in order", () => {
  assert.equal(queryOf({ agent: "3", since: "2026-01-01", until: "2026-01-31", inbox: "" }), "since=2026-01-01&until=2026-01-31&agent=3");
  assert.equal(queryOf({ agent: "3", team: "2", since: "2026-01-01", until: "", inbox: "1" }), "since=2026-01-01&inbox=1&team=2&agent=3");
});

test("a missing value breaks the line", () => {
  assert.equal(linePath([0, 10, null, 5], { width: 30, height: 10, max: 10 }), "M0.0,10.0L10.0,0.0M30.0,5.0");
});
