// The Reports page: filters in the URL, one section per chart the API lists (chart, totals, table, CSV link).
// The data and the rules (which inboxes, which figures) come from /api/v1/reports/.

import { createApi } from "./api.js";
import { el } from "./dom.js";
import { cellText, drawChart, legend, queryOf } from "./report-charts.js";

const config = JSON.parse(document.getElementById("reports-config").textContent);
const api = createApi({ base: config.api, loginUrl: config.login_url });
const $ = (id) => document.getElementById(id);
const fields = { since: $("filter-since"), until: $("filter-until"), inbox: $("filter-inbox"), team: $("filter-team"), agent: $("filter-agent") };
const charts = $("report-charts");
let index = null;
let generation = 0;

function filters() {
  return Object.fromEntries(Object.entries(fields).map(([key, input]) => [key, input.value]));
}

function showError(message) {
  $("report-error").textContent = message || "";
  $("report-error").hidden = !message;
}

function table(key, chart) {
  const head = el("tr", {}, ...chart.columns.map((column) => el("th", { scope: "col", text: column.label })));
  const body = chart.rows.map((row) =>
    el("tr", {}, ...chart.columns.map((column) => el("td", { class: typeof row[column.key] === "number" || column.unit ? "num" : null, text: cellText(row[column.key], column.unit) }))),
  );
  return el("div", { class: "table-wrap" }, el("table", { class: "report-table", id: `table-${key}` }, el("thead", {}, head), el("tbody", {}, ...body)));
}

function totals(chart) {
  const items = Object.entries(chart.totals || {}).map(([key, value]) => {
    const column = chart.columns.find((c) => c.key === key);
    const unit = column ? column.unit : (chart.total_units || {})[key] || "";
    const label = column ? column.label : key[0].toUpperCase() + key.slice(1).replace(/_/g, " ");
    return el("li", {}, el("span", { class: "muted", text: `${label}${unit === "%" ? " (%)" : ""} ` }), el("strong", { dataset: { total: key }, text: cellText(value, unit) || "–" }));
  });
  return el("ul", { class: "report-totals" }, ...items);
}

function section(key, chart, query) {
  const csv = `${config.api}${key}/?${query}${query ? "&" : ""}format=csv`;
  return el(
    "section",
    { class: "report-card", id: `chart-${key}`, dataset: { chart: key } },
    el("header", { class: "report-card-head" }, el("h2", { text: chart.title }), el("a", { class: "btn btn-small csv-link", href: csv, download: "", text: "CSV" })),
    totals(chart),
    el("figure", { class: "report-figure" }, drawChart(chart), legend(chart)),
    table(key, chart),
  );
}

async function load() {
  const state = filters();
  const query = queryOf(state);
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
  const mine = ++generation;
  charts.dataset.state = "loading";
  const answers = await Promise.all(index.charts.map((chart) => api("GET", `${chart.key}/?${query}`)));
  if (mine !== generation) return; // a newer filter change is loading
  const failed = answers.find((answer) => !answer.ok);
  if (failed) {
    showError(failed.data.message || "The reports could not be loaded.");
    charts.dataset.state = "error";
    return;
  }
  showError("");
  charts.replaceChildren(...index.charts.map((chart, i) => section(chart.key, answers[i].data, query)));
  charts.dataset.query = query;
  charts.dataset.state = "ready";
}

// Only the chosen inbox's teams are offered (a team belongs to one inbox); one of another inbox is dropped.
function showTeams() {
  for (const option of fields.team.options) {
    if (option.value) option.hidden = Boolean(fields.inbox.value) && option.dataset.inbox !== fields.inbox.value;
  }
  if (fields.team.selectedOptions[0]?.hidden) fields.team.value = "";
}

function daysBack(days) {
  const until = new Date(index.until + "T00:00:00Z");
  const since = new Date(until.getTime() - (days - 1) * 86400000);
  fields.since.value = since.toISOString().slice(0, 10);
  fields.until.value = index.until;
  load();
}

async function start() {
  const answer = await api("GET", "");
  if (!answer.ok) return showError(answer.data.message || "The reports could not be loaded.");
  index = answer.data;
  for (const inbox of index.inboxes) fields.inbox.append(el("option", { value: inbox.id, text: inbox.name }));
  for (const agent of index.agents) fields.agent.append(el("option", { value: agent.id, text: agent.name }));
  for (const team of index.teams) fields.team.append(el("option", { value: team.id, text: team.name, dataset: { inbox: team.inbox } }));
  $("filter-team-label").hidden = !index.teams.length;
  const params = new URLSearchParams(location.search);
  fields.since.value = params.get("since") || index.since;
  fields.until.value = params.get("until") || index.until;
  fields.inbox.value = params.get("inbox") || "";
  fields.team.value = params.get("team") || "";
  fields.agent.value = params.get("agent") || "";
  showTeams();
  fields.inbox.addEventListener("change", showTeams);
  for (const input of Object.values(fields)) input.addEventListener("change", load);
  for (const button of document.querySelectorAll("[data-days]")) button.addEventListener("click", () => daysBack(Number(button.dataset.days)));
  $("report-filters").addEventListener("submit", (event) => event.preventDefault());
  load();
}

start();
