// The agents' inbox, wired together. Push is a hint, REST is the truth: a live event only says *what*
// changed; the page refetches that and ignores anything older (by `version`) than what it shows.
import { actions, api, config, currentConv, ME, state } from "./ctx.js";
import { $, apiError, el, markProcessed, toast } from "./dom.js";
import { contactName } from "./format.js";
import { connectLive } from "./live.js";
import { snoozeUntil } from "./store.js";
import { alertAgent, askPermission, renderNotifyButton } from "./notify.js";
import { bindShortcuts } from "./shortcuts.js";
import { attachImage, clearAttachment, clearQuote, closeShare, openShare, renderComposerState, send, setMode, typing } from "./views/composer.js";
import { cannedKeydown, createCanned, openCannedFromShortcut, updateCannedPicker } from "./views/canned.js";
import { addLabel, createLabel, loadLabels } from "./views/labels.js";
import { loadTeams } from "./views/teams.js";
import { loadCsat } from "./views/csat.js";
import { bindAvailability, loadAvailability, memberGroups, memberTitle } from "./views/availability.js";
import { initialLayout, setPane, toggleDetails } from "./views/layout.js";
import { applyConversation, loadList, loadMore, refreshConversation, renderControls, renderList, saveFilters } from "./views/list.js";
import { addAttributeRow, closeContactForm, contactChanged, editContact, loadGallery, saveContact } from "./views/panel.js";
import { closeThread, loadEarlier, markRead, openConversation, refreshMessage, renderThread, renderThreadChrome, watchScroll } from "./views/thread.js";

Object.assign(actions, { openConversation, renderThread, renderThreadChrome, refreshConversation, applyConversation });

// ---------------------------------------------------------------- live events

function handleEvent(event) {
  const id = event.conversation_id;
  switch (event.type) {
    case "conversation.created":
      refreshConversation(id);
      alertAgent("New conversation", "A customer wrote to the inbox.", () => openConversation(id, true));
      break;
    case "conversation.team": {
      // Handed to a team (a rule): a team created since the page loaded is not in the filter yet.
      if (event.team && !state.teams.some((team) => team.id === event.team.id)) loadTeams();
      const shown = state.convs.get(id);
      if (!shown || event.version > shown.version) refreshConversation(id);
      break;
    }
    case "conversation.updated":
    case "conversation.labels": {
      // A label this page has not heard of (created by a colleague): its colour is in the catalogue.
      if ((event.labels || []).some((name) => !state.labels.some((label) => label.name.toLowerCase() === name.toLowerCase()))) loadLabels();
      const shown = state.convs.get(id);
      if (!shown || event.version > shown.version) refreshConversation(id);
      break;
    }
    case "message.created": {
      const shown = state.convs.get(id);
      if (!shown || event.version > shown.version || id === state.currentId) refreshConversation(id);
      if (id === state.currentId && !state.messages.has(event.message_id)) {
        refreshMessage(event.message_id);
        loadGallery();
      }
      if (event.direction === "in") {
        if (id === state.currentId) markRead();
        const mine = shown && shown.assignee && shown.assignee.id === ME;
        if (mine && (id !== state.currentId || document.visibilityState !== "visible")) {
          alertAgent("New message from " + contactName(shown.contact), "In a conversation assigned to you.", () => openConversation(id, true));
        }
      }
      break;
    }
    case "message.status":
    case "message.retried": {
      if (id !== state.currentId) break;
      const shown = state.messages.get(event.message_id);
      if (shown && event.version <= shown.version) break; // older than what is shown
      refreshMessage(event.message_id);
      if (event.status === "failed" || event.type === "message.retried") refreshConversation(id);
      break;
    }
    case "message.updated":
      // A comment hidden, shown again or deleted (or the request to do so failed): the REST API has the state.
      if (id === state.currentId) refreshMessage(event.message_id);
      break;
    case "note.mentioned":
      toast(event.author + " mentioned you in a note.");
      alertAgent("Mentioned by " + event.author, "In a private note.", () => openConversation(id, true));
      break;
    case "contact.updated":
      contactChanged(event.contact_id);
      break;
    case "csat.rated":
      if (id === state.currentId) loadCsat(id);
      break;
    case "agent.availability":
      $("assignee-select").dataset.inbox = ""; // the assign menu shows availability: load it afresh
      break;
    case "labels.changed":
      loadLabels();
      break;
    case "conversion.updated":
      if (id === state.currentId) refreshConversation(id);
      break;
    default:
      break;
  }
  markProcessed(event);
}

// After (re)connecting: whatever happened while we were away, the REST API knows.
function resync() {
  loadLabels();
  loadTeams();
  loadAvailability();
  loadList();
  if (state.currentId) openConversation(state.currentId, false);
}

function setLive(status, detail) {
  const badge = $("live-status");
  badge.dataset.state = status;
  badge.textContent = status === "live" ? "Live" : status === "connecting" ? "Connecting…" : "Offline — " + detail;
  badge.title = status === "live" ? "Live updates are on" : status === "connecting" ? "Connecting to live updates" : "Live updates are down: the list may be out of date";
}

// ---------------------------------------------------------------- actions

async function action(name, body) {
  const id = state.currentId;
  const result = await api("POST", "conversations/" + id + "/" + name + "/", body);
  if (!result.ok) {
    apiError(result);
    refreshConversation(id);
    return;
  }
  applyConversation(result.data);
}

async function loadMembers() {
  const conv = currentConv();
  const select = $("assignee-select");
  if (!conv || select.dataset.inbox === String(conv.inbox.id)) return;
  const result = await api("GET", "inboxes/" + conv.inbox.id + "/availability/");
  if (!result.ok) return;
  select.dataset.inbox = String(conv.inbox.id);
  select.replaceChildren(
    el("option", { value: "", text: "Assign to…" }),
    ...memberGroups(result.data).map(([label, members]) =>
      el("optgroup", { label }, ...members.map((member) => el("option", { value: String(member.id), text: member.id === ME ? member.name + " (you)" : member.name, title: memberTitle(member) })))
    )
  );
}

// ---------------------------------------------------------------- wiring

for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    state.tab = tab.dataset.tab;
    saveFilters();
    renderControls();
    loadList();
  });
}
for (const seg of document.querySelectorAll(".seg")) {
  seg.addEventListener("click", () => {
    state.status = seg.dataset.status;
    saveFilters();
    renderControls();
    loadList();
  });
}
$("ordering").addEventListener("change", () => {
  state.ordering = $("ordering").value;
  saveFilters();
  loadList();
});
let searchTimer = null;
$("search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    state.q = $("search").value.trim();
    saveFilters();
    loadList();
  }, 250);
});
$("load-more").addEventListener("click", loadMore);
$("load-earlier").addEventListener("click", loadEarlier);

const priority = $("priority-select");
for (const choice of config.priorities) {
  priority.append(el("option", { value: choice.value, text: choice.value === "none" ? "No priority" : choice.label + " priority" }));
}
priority.addEventListener("change", () => action("priority", { priority: priority.value }));
$("assign-button").addEventListener("click", () => action("assign", { assignee: "me" }));
$("unassign-button").addEventListener("click", () => action("unassign"));
$("resolve-button").addEventListener("click", () => action("resolve"));
$("reopen-button").addEventListener("click", () => action("reopen"));
$("snooze-select").addEventListener("change", () => {
  const until = snoozeUntil($("snooze-select").value, Date.now());
  $("snooze-select").value = "";
  if (until) action("snooze", { until: until.toISOString() });
});
$("assignee-select").addEventListener("focus", loadMembers);
$("assignee-select").addEventListener("pointerdown", loadMembers);
$("assignee-select").addEventListener("change", () => {
  const value = $("assignee-select").value;
  $("assignee-select").value = "";
  if (value) action("assign", { assignee: value });
});

$("composer-form").addEventListener("submit", send);
$("composer-text").addEventListener("keydown", (event) => {
  if (cannedKeydown(event)) return;
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
$("composer-text").addEventListener("input", () => {
  typing();
  updateCannedPicker();
});
$("composer-text").addEventListener("blur", () => setTimeout(() => ($("canned-picker").hidden = true), 150));
$("label-add").addEventListener("change", () => {
  addLabel($("label-add").value);
  $("label-add").value = "";
});
$("kind-filter").addEventListener("change", () => {
  state.kind = $("kind-filter").value;
  saveFilters();
  loadList();
});
$("label-filter").addEventListener("change", () => {
  state.label = $("label-filter").value;
  saveFilters();
  loadList();
});
$("team-filter").addEventListener("change", () => {
  state.team = $("team-filter").value;
  saveFilters();
  loadList();
});
$("new-label-form").addEventListener("submit", createLabel);
$("contact-edit").addEventListener("click", editContact);
$("contact-cancel").addEventListener("click", closeContactForm);
$("attribute-add").addEventListener("click", addAttributeRow);
$("contact-form").addEventListener("submit", saveContact);
$("new-canned-form").addEventListener("submit", createCanned);
for (const button of document.querySelectorAll(".mode-button")) button.addEventListener("click", () => setMode(button.dataset.mode));
$("quote-clear").addEventListener("click", clearQuote);
$("attachment-clear").addEventListener("click", clearAttachment);
$("share-clear").addEventListener("click", closeShare);
$("share-button").addEventListener("click", openShare);
$("image-input").addEventListener("change", () => attachImage($("image-input").files[0]));

$("back-to-list").addEventListener("click", () => closeThread());
$("details-button").addEventListener("click", () => toggleDetails());
$("back-to-thread").addEventListener("click", () => toggleDetails(false));
$("notify-button").addEventListener("click", askPermission);
$("help-button").addEventListener("click", () => ($("help-overlay").hidden = false));
$("help-close").addEventListener("click", () => ($("help-overlay").hidden = true));

bindShortcuts({
  open: (id) => openConversation(id, true, { focus: false }),
  resolve: () => action("resolve"),
  assign: async () => {
    await loadMembers();
    $("assignee-select").focus();
    try {
      $("assignee-select").showPicker();
    } catch (e) {
      /* focus is enough where showPicker is not allowed */
    }
  },
  noteMode: () => setMode("note"),
  canned: () => {
    $("composer-text").focus();
    openCannedFromShortcut();
  },
  escape: () => {
    if (state.pane === "details") toggleDetails(false);
  },
});

window.addEventListener("popstate", () => {
  const match = location.pathname.match(/\/c\/(\d+)\/$/);
  if (match) openConversation(Number(match[1]), false);
  else closeThread();
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && state.currentId) {
    const conv = currentConv();
    if (conv && conv.unread_count > 0) markRead();
  }
});

// Time left moves on without any event: the open composer every second, the list every 30 s.
setInterval(() => state.currentId && renderComposerState(), 1000);
setInterval(renderList, 30000);

watchScroll();
bindAvailability();
loadAvailability();
initialLayout();
renderControls();
renderNotifyButton();
if (config.conversation_id) openConversation(config.conversation_id, false);
else setPane("list");
saveFilters(); // after the open above: the address keeps the conversation and gains the filters
loadList();
connectLive({
  path: config.ws_path,
  onEvent: handleEvent,
  onHello: resync,
  onStatus: setLive,
  onRefused: () => api("GET", "conversations/?page_size=1"), // the session ended: the API sends us to login
});
