// The automation rules page: the rules of an inbox with their latest runs; admins create, pause and delete them.
// Everything the rules may say (events, conditions and their operators, actions) comes from the server's config.
import { createApi } from "./api.js";
import { $, apiError, el, toast } from "./dom.js";

const config = JSON.parse($("automation-config").textContent);
const api = createApi({ base: config.api, loginUrl: config.login_url });
const page = { inbox: null, catalogue: { members: [], teams: [], labels: [], canned: [] } };

const ACTION_PARAMETER = {
  assign_agent: { key: "agent_id", from: "members" },
  assign_team: { key: "team_id", from: "teams" },
  add_label: { key: "label", from: "labels" },
  remove_label: { key: "label", from: "labels" },
  set_priority: { key: "priority", from: "priorities" },
  send_canned_response: { key: "canned_response_id", from: "canned" },
  add_note: { key: "text", input: "text", placeholder: "Note for the agents" },
  resolve: null,
  snooze: { key: "minutes", input: "number", placeholder: "minutes" },
  webhook: { key: "url", input: "url", placeholder: "https://…" },
};

function options(list, selected) {
  return list.map(([value, label]) => el("option", { value: String(value), text: label, selected: String(value) === String(selected) }));
}

function choices(source) {
  const c = page.catalogue;
  if (source === "members") return c.members.map((m) => [m.id, m.name]);
  if (source === "teams") return c.teams.map((t) => [t.id, t.name]);
  if (source === "labels") return c.labels.map((l) => [l.name, l.name]);
  if (source === "canned") return c.canned.filter((r) => !r.personal).map((r) => [r.id, "/" + r.short_code]);
  return config.priorities.map((p) => [p, p]);
}

export function describeCondition(condition) {
  const key = condition.key ? " “" + condition.key + "”" : "";
  return condition.attribute.replace(/_/g, " ") + key + " " + condition.operator.replace(/_/g, " ") + " “" + condition.value + "”";
}

export function describeAction(action) {
  const spec = ACTION_PARAMETER[action.type];
  return action.type.replace(/_/g, " ") + (spec ? " " + action[spec.key] : "");
}

// ------------------------------------------------------------------ the list

async function loadRules() {
  const [rules, runs] = await Promise.all([api("GET", "automation-rules/?inbox=" + page.inbox), api("GET", "automation-runs/")]);
  if (!rules.ok) return apiError(rules);
  const list = $("rule-list");
  list.replaceChildren(...rules.data.map((rule) => ruleItem(rule, runs.ok ? runs.data.filter((r) => r.rule === rule.id) : [])));
  $("rule-empty").hidden = rules.data.length > 0;
}

function ruleItem(rule, runs) {
  const event = config.events.find((e) => e.value === rule.event);
  const when = (event ? event.label : rule.event) + (rule.no_reply_minutes ? " (" + rule.no_reply_minutes + " min)" : "");
  const item = el(
    "li",
    { class: "rule-item" + (rule.active ? "" : " rule-paused"), dataset: { ruleId: String(rule.id) } },
    el("div", { class: "rule-head" }, el("strong", { class: "rule-name", text: rule.name }), el("span", { class: "pill", text: rule.active ? "active" : "paused" })),
    el("p", { class: "small", text: "When " + when + (rule.conditions.length ? " and " + rule.conditions.map(describeCondition).join(", ") : "") }),
    el("p", { class: "small", text: "Then " + rule.actions.map(describeAction).join(" → ") })
  );
  if (runs.length) {
    const recent = runs.slice(0, 5).map((run) => el("li", { text: new Date(run.created_at).toLocaleString() + " · conversation " + run.conversation + " · " + run.outcome, title: run.results.map((r) => r.type + ": " + r.outcome + (r.detail ? " (" + r.detail + ")" : "")).join("\n") }));
    item.append(el("details", { class: "rule-runs" }, el("summary", { text: runs.length + " recent runs" }), el("ul", {}, ...recent)));
  }
  if (config.is_admin) {
    item.append(
      el(
        "div",
        { class: "rule-buttons" },
        el("button", { type: "button", class: "btn btn-small rule-toggle", text: rule.active ? "Pause" : "Activate", onclick: () => change(rule, { active: !rule.active }) }),
        el("button", { type: "button", class: "btn btn-ghost btn-small rule-delete", text: "Delete", onclick: () => remove(rule) })
      )
    );
  }
  return item;
}

async function change(rule, body) {
  const result = await api("PATCH", "automation-rules/" + rule.id + "/", body);
  if (!result.ok) return apiError(result);
  loadRules();
}

async function remove(rule) {
  if (!confirm("Delete the rule “" + rule.name + "” and its run records?")) return;
  const result = await api("DELETE", "automation-rules/" + rule.id + "/");
  if (!result.ok) return apiError(result);
  loadRules();
}

// ------------------------------------------------------------------ the form (admins)

function conditionRow() {
  const attribute = el("select", { class: "input select condition-attribute", "aria-label": "Attribute" }, ...options(Object.keys(config.conditions).map((a) => [a, a.replace(/_/g, " ")])));
  const operator = el("select", { class: "input select condition-operator", "aria-label": "Operator" });
  const key = el("input", { class: "input condition-key", placeholder: "attribute name", "aria-label": "Contact attribute", hidden: true });
  const value = el("input", { class: "input condition-value", placeholder: "value", "aria-label": "Value", required: true });
  const sync = () => {
    operator.replaceChildren(...options(config.conditions[attribute.value].map((o) => [o, o.replace(/_/g, " ")])));
    key.hidden = attribute.value !== "contact_attribute";
  };
  attribute.addEventListener("change", sync);
  sync();
  const row = el("div", { class: "rule-row condition-row" }, attribute, operator, key, value);
  row.append(el("button", { type: "button", class: "btn btn-ghost btn-small", text: "×", "aria-label": "Remove", onclick: () => row.remove() }));
  return row;
}

function actionRow() {
  const type = el("select", { class: "input select action-type", "aria-label": "Action" }, ...options(config.actions.map((a) => [a, a.replace(/_/g, " ")])));
  const slot = el("span", { class: "action-parameter" });
  const sync = () => {
    const spec = ACTION_PARAMETER[type.value];
    if (!spec) slot.replaceChildren();
    else if (spec.from) slot.replaceChildren(el("select", { class: "input select action-value", "aria-label": "Parameter" }, ...options(choices(spec.from))));
    else slot.replaceChildren(el("input", { class: "input action-value", type: spec.input, placeholder: spec.placeholder, "aria-label": "Parameter", required: true }));
  };
  type.addEventListener("change", sync);
  sync();
  const row = el("div", { class: "rule-row action-row" }, type, slot);
  row.append(el("button", { type: "button", class: "btn btn-ghost btn-small", text: "×", "aria-label": "Remove", onclick: () => row.remove() }));
  return row;
}

export function actionFrom(type, raw) {
  const spec = ACTION_PARAMETER[type];
  const action = { type };
  if (spec) action[spec.key] = /_id$|^minutes$/.test(spec.key) ? Number(raw) : raw;
  return action;
}

async function create(event) {
  event.preventDefault();
  const body = {
    inbox: page.inbox,
    name: $("rule-name").value,
    event: $("rule-event").value,
    no_reply_minutes: $("rule-event").value === "no_agent_reply" ? Number($("rule-minutes").value) : null,
    conditions: Array.from(document.querySelectorAll(".condition-row"), (row) => {
      const condition = { attribute: row.querySelector(".condition-attribute").value, operator: row.querySelector(".condition-operator").value, value: row.querySelector(".condition-value").value };
      if (condition.attribute === "contact_attribute") condition.key = row.querySelector(".condition-key").value;
      return condition;
    }),
    actions: Array.from(document.querySelectorAll(".action-row"), (row) => {
      const input = row.querySelector(".action-value");
      return actionFrom(row.querySelector(".action-type").value, input ? input.value : "");
    }),
  };
  const result = await api("POST", "automation-rules/", body);
  if (!result.ok) return apiError(result);
  toast("Rule created");
  const secret = $("rule-secret");
  secret.hidden = !body.actions.some((a) => a.type === "webhook");
  secret.textContent = "Webhook signing secret (shown once): " + result.data.webhook_secret;
  $("rule-form").reset();
  $("condition-rows").replaceChildren();
  $("action-rows").replaceChildren(actionRow());
  syncEvent();
  loadRules();
}

function syncEvent() {
  const noReply = $("rule-event").value === "no_agent_reply";
  $("rule-minutes").hidden = $("rule-minutes-label").hidden = !noReply;
  $("rule-minutes").required = noReply;
}

async function loadCatalogue() {
  const [members, teams, labels, canned] = await Promise.all([
    api("GET", "inboxes/" + page.inbox + "/availability/"),
    api("GET", "teams/?inbox=" + page.inbox),
    api("GET", "labels/?inbox=" + page.inbox),
    api("GET", "canned-responses/?inbox=" + page.inbox),
  ]);
  page.catalogue = { members: members.data || [], teams: teams.data || [], labels: labels.data || [], canned: canned.data || [] };
  if ($("action-rows")) $("action-rows").replaceChildren(actionRow());
  document.body.dataset.catalogue = String(page.inbox); // the form's choices are this inbox's
}

function selectInbox() {
  page.inbox = Number($("rule-inbox").value);
  loadRules();
  if (config.is_admin) loadCatalogue();
}

$("rule-inbox").replaceChildren(...options(config.inboxes.map((i) => [i.id, i.name])));
$("rule-inbox").addEventListener("change", selectInbox);
if (config.is_admin) {
  $("rule-event").replaceChildren(...options(config.events.map((e) => [e.value, e.label])));
  $("rule-event").addEventListener("change", syncEvent);
  $("add-condition").addEventListener("click", () => $("condition-rows").append(conditionRow()));
  $("add-action").addEventListener("click", () => $("action-rows").append(actionRow()));
  $("rule-form").addEventListener("submit", create);
  syncEvent();
}
if (config.inboxes.length) selectInbox();
else $("rule-empty").hidden = false;
