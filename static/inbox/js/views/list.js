// The conversation list: tabs, status, search, rows; live changes are placed by the store's rules.
import { coalesce } from "../api.js";
import { actions, api, config, conversationUrl, ME, state } from "../ctx.js";
import { $, apiError, el, fillAvatar } from "../dom.js";
import { contactName, duration, fullTime, previewText, shortAgo, windowLeft } from "../format.js";
import { filtersQuery, listParams, placeInList, slaState, storeConv, unreadConversations } from "../store.js";
import { labelChip } from "./labels.js";
import { teamChip } from "./teams.js";

export function saveFilters() {
  try {
    localStorage.setItem("inbox.filters", JSON.stringify({ tab: state.tab, status: state.status, ordering: state.ordering }));
  } catch (e) {
    /* private mode: filters are simply not remembered */
  }
  // The address bar carries the filters too, so a view can be bookmarked or shared.
  const path = state.currentId ? conversationUrl(state.currentId) : config.home;
  history.replaceState(history.state, "", path + filtersQuery(state));
}

export async function loadList() {
  const seq = ++state.listSeq;
  const result = await api("GET", "conversations/?" + listParams(state));
  if (seq !== state.listSeq) return; // a newer load (other filters) is on its way
  if (!result.ok && result.data && result.data.code === "invalid_team" && state.team) {
    // A bookmarked or remembered team that is gone (or of an inbox no longer ours): show every team instead.
    state.team = "";
    saveFilters();
    return loadList();
  }
  if (!result.ok) return apiError(result, "Conversations could not be loaded.");
  for (const conv of result.data.results) storeConv(state, conv);
  state.order = result.data.results.map((c) => c.id);
  state.next = result.data.next;
  renderList();
}

export async function loadMore() {
  if (!state.next) return;
  const seq = state.listSeq;
  const result = await api("GET", state.next);
  if (seq !== state.listSeq || !result.ok) return;
  for (const conv of result.data.results) {
    storeConv(state, conv);
    if (!state.order.includes(conv.id)) state.order.push(conv.id);
  }
  state.next = result.data.next;
  renderList();
}

let searchReload = null;
function place(conv) {
  if (placeInList(state, conv, Date.now(), config.limits.reply_window_hours) === "reload") {
    // Whether it matches the search only the server knows: reload the list (once for a burst).
    clearTimeout(searchReload);
    searchReload = setTimeout(loadList, 300);
  }
}

function windowChip(conv) {
  const left = windowLeft(conv);
  if (conv.kind === "comment") return el("span", { class: "kind-chip", text: "💬 Comment", title: "A comment on video " + ((conv.subject && conv.subject.id) || "") });
  if (left === null) return el("span", { class: "window-chip window-none", text: "No window" });
  if (left <= 0) return el("span", { class: "window-chip window-closed", text: "Closed", title: "Reply window closed" });
  const cls = left < 3600000 ? "window-danger" : left < 6 * 3600000 ? "window-warn" : "window-ok";
  return el("span", { class: "window-chip " + cls, text: duration(left) + " left", title: "Reply window closes " + fullTime(conv.reply_window_closes_at) });
}

function slaChip(conv) {
  const sla = slaState(conv, Date.now());
  if (!sla) return null;
  const due = "First response due " + fullTime(conv.first_response_due_at);
  if (sla.overdue) return el("span", { class: "sla-chip sla-overdue", text: "SLA overdue " + duration(sla.ms), title: due });
  return el("span", { class: "sla-chip" + (sla.soon ? " sla-soon" : ""), text: "SLA " + duration(sla.ms) + " left", title: due });
}

function renderRow(conv) {
  const avatar = el("div", { class: "avatar", "aria-hidden": "true" });
  fillAvatar(avatar, conv.contact);
  const meta = el("div", { class: "row-meta" }, windowChip(conv), slaChip(conv));
  if (conv.status === "pending" && conv.snoozed_until) {
    meta.append(el("span", { class: "snooze-chip", text: "Snoozed", title: "Reopens " + fullTime(conv.snoozed_until) }));
  }
  for (const name of conv.labels || []) meta.append(labelChip(conv, name));
  if (conv.team) meta.append(teamChip(conv));
  if (conv.priority && conv.priority !== "none") meta.append(el("span", { class: "prio prio-" + conv.priority, text: conv.priority }));
  if (conv.referral) meta.append(el("span", { class: "ref-chip", text: conv.referral.kind_label || "Referral" }));
  if (conv.assignee) {
    meta.append(
      el("span", {
        class: "assignee-chip" + (conv.assignee.id === ME ? " assignee-me" : ""),
        text: conv.assignee.id === ME ? "You" : conv.assignee.name,
        title: "Assigned to " + conv.assignee.name,
      })
    );
  }
  const unread = conv.unread_count > 0 ? el("span", { class: "unread-badge", text: String(conv.unread_count) }) : null;
  const link = el(
    "a",
    {
      href: conversationUrl(conv.id),
      class: "row-link",
      onclick: (event) => {
        if (event.metaKey || event.ctrlKey || event.shiftKey) return;
        event.preventDefault();
        actions.openConversation(conv.id, true);
      },
    },
    avatar,
    el(
      "div",
      { class: "row-main" },
      el(
        "div",
        { class: "row-top" },
        el("span", { class: "row-name", text: contactName(conv.contact) }),
        el("time", { class: "row-time", text: shortAgo(conv.last_activity_at), title: fullTime(conv.last_activity_at) })
      ),
      el("div", { class: "row-bottom" }, el("span", { class: "row-preview", dir: "auto", text: previewText(conv.last_message) }), unread),
      meta
    )
  );
  return el(
    "li",
    {
      class: "conv-row" + (conv.id === state.currentId ? " active" : "") + (conv.unread_count > 0 ? " has-unread" : ""),
      dataset: { id: String(conv.id), version: String(conv.version) },
    },
    link
  );
}

export function renderList() {
  const rows = state.order.map((id) => renderRow(state.convs.get(id)));
  $("conversation-list").replaceChildren(...rows);
  $("list-empty").hidden = rows.length > 0;
  $("load-more").hidden = !state.next;
  const unread = unreadConversations(state);
  document.title = (unread ? "(" + unread + ") " : "") + "Inbox · TikTok Inbox";
  scheduleCounts();
}

// Unread conversations per view (Mine, Unassigned, All) of the shown status, from the server; a burst of
// changes makes one request.
let countsTimer = null;
function scheduleCounts() {
  clearTimeout(countsTimer);
  countsTimer = setTimeout(async () => {
    const result = await api("GET", "conversations/unread-counts/?status=" + state.status);
    if (!result.ok) return;
    for (const tab of document.querySelectorAll(".tab")) {
      const count = result.data[tab.dataset.tab] || 0;
      tab.querySelector(".tab-count").textContent = count ? String(count) : "";
      tab.dataset.unread = String(count);
    }
  }, 250);
}

export function renderControls() {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.setAttribute("aria-selected", String(tab.dataset.tab === state.tab));
  }
  for (const seg of document.querySelectorAll(".seg")) {
    seg.classList.toggle("active", seg.dataset.status === state.status);
    seg.setAttribute("aria-pressed", String(seg.dataset.status === state.status));
  }
  $("ordering").value = state.ordering;
  $("kind-filter").value = state.kind || "";
  if (document.activeElement !== $("search")) $("search").value = state.q;
}

// Fetch one conversation and put it wherever it now belongs (list row, open thread).
export function refreshConversation(id) {
  coalesce("conv:" + id, async () => {
    const result = await api("GET", "conversations/" + id + "/");
    if (result.status === 404) {
      dropConversation(id);
      return;
    }
    if (result.ok) applyConversation(result.data);
  });
}

export function applyConversation(conv) {
  if (!storeConv(state, conv)) return;
  place(state.convs.get(conv.id));
  renderList();
  if (conv.id === state.currentId) actions.renderThreadChrome();
}

export function dropConversation(id) {
  state.order = state.order.filter((other) => other !== id);
  state.convs.delete(id);
  renderList();
}
