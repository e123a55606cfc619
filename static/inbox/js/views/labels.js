// Labels: the catalogue (per inbox), chips on rows and in the thread, add/remove, the list filter, management.
import { actions, api, currentConv, state } from "../ctx.js";
import { $, apiError, el } from "../dom.js";
import { findLabel, labelsToAdd } from "../store.js";
import { teamChip } from "./teams.js";

export async function loadLabels() {
  const result = await api("GET", "labels/");
  if (!result.ok) return;
  state.labels = result.data;
  renderLabelFilter();
  renderThreadLabels();
  renderLabelManager();
}

export function labelChip(conv, name, onRemove) {
  const label = findLabel(state.labels, conv.inbox.id, name);
  const chip = el("span", { class: "label-chip", dataset: { label: name } }, el("span", { class: "label-dot", "aria-hidden": "true" }), name);
  if (label) chip.style.setProperty("--label", label.color);
  if (onRemove) chip.append(el("button", { type: "button", class: "label-remove", "aria-label": "Remove label " + name, text: "×", onclick: onRemove }));
  return chip;
}

async function setLabels(names) {
  const id = state.currentId;
  const result = await api("PATCH", "conversations/" + id + "/", { labels: names });
  if (!result.ok) {
    apiError(result, "The labels were not changed.");
    return;
  }
  actions.applyConversation(result.data);
}

export function renderThreadLabels() {
  const conv = currentConv();
  if (!conv) return;
  const names = conv.labels || [];
  // The team (set by routing rules) leads the row; it is shown, not edited here.
  $("thread-labels").replaceChildren(...[teamChip(conv)].filter(Boolean), ...names.map((name) => labelChip(conv, name, () => setLabels(names.filter((other) => other !== name)))));
  const add = $("label-add");
  const options = labelsToAdd(state.labels, conv);
  add.replaceChildren(el("option", { value: "", text: "+ Label" }), ...options.map((label) => el("option", { value: label.name, text: label.name })));
  add.hidden = options.length === 0;
  $("thread-labels-row").hidden = names.length === 0 && options.length === 0 && !conv.team;
}

export function addLabel(name) {
  const conv = currentConv();
  if (conv && name) setLabels([...(conv.labels || []), name]);
}

export function renderLabelFilter() {
  const select = $("label-filter");
  const names = Array.from(new Set(state.labels.map((label) => label.name))).sort((a, b) => a.localeCompare(b));
  select.replaceChildren(el("option", { value: "", text: "All labels" }), ...names.map((name) => el("option", { value: name, text: name })));
  select.value = names.includes(state.label) ? state.label : "";
  select.hidden = names.length === 0 && !state.label;
}

// Managed from the details pane: the labels of the open conversation's inbox.
export function renderLabelManager() {
  const conv = currentConv();
  const list = $("label-manager");
  if (!conv) return;
  $("label-manager-inbox").textContent = conv.inbox.name;
  list.replaceChildren(
    ...state.labels
      .filter((label) => label.inbox_id === conv.inbox.id)
      .map((label) =>
        el(
          "li",
          { class: "manager-row" },
          labelChip(conv, label.name),
          el("button", {
            type: "button",
            class: "link-button",
            text: "Delete",
            "aria-label": "Delete label " + label.name,
            onclick: async () => {
              const result = await api("DELETE", "labels/" + label.id + "/");
              if (!result.ok) apiError(result);
              loadLabels();
            },
          })
        )
      )
  );
}

export async function createLabel(event) {
  event.preventDefault();
  const conv = currentConv();
  if (!conv) return;
  const result = await api("POST", "labels/", { inbox: conv.inbox.id, name: $("new-label-name").value, color: $("new-label-color").value });
  if (!result.ok) return apiError(result, "The label was not created.");
  $("new-label-name").value = "";
  loadLabels();
}
