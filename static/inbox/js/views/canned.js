// Canned responses: `/` in the composer opens a filtered picker (arrows + Enter insert, Esc closes);
// the texts come rendered for the open conversation by the server ({{contact.name}}, {{agent.name}}).
import { api, currentConv, state } from "../ctx.js";
import { $, apiError, el } from "../dom.js";
import { cannedQuery, filterCanned, insertCanned } from "../store.js";

async function loadCanned() {
  const id = state.currentId;
  if (!id) return [];
  if (state.canned.conversationId !== id) {
    const result = await api("GET", "canned-responses/?conversation=" + id);
    if (!result.ok || id !== state.currentId) return [];
    state.canned.items = result.data;
    state.canned.conversationId = id;
    renderCannedManager();
  }
  return state.canned.items;
}

export function forgetCanned() {
  state.canned.conversationId = null;
}

function close() {
  state.canned.open = false;
  $("canned-picker").hidden = true;
  $("composer-text").removeAttribute("aria-activedescendant");
}

/** On each keystroke: open, filter or close the picker from the `/code` at the caret. */
export async function updateCannedPicker() {
  const text = $("composer-text");
  const query = state.mode === "reply" ? cannedQuery(text.value, text.selectionStart) : null;
  if (!query) return close();
  const items = filterCanned(await loadCanned(), query.query);
  state.canned.matches = items;
  state.canned.start = query.start;
  state.canned.index = Math.min(state.canned.index, Math.max(items.length - 1, 0));
  state.canned.open = true;
  render();
}

function render() {
  const picker = $("canned-picker");
  const items = state.canned.matches || [];
  picker.replaceChildren(
    ...(items.length
      ? items.map((item, index) =>
          el(
            "li",
            {
              id: "canned-option-" + index,
              role: "option",
              class: "canned-option",
              "aria-selected": String(index === state.canned.index),
              onmousedown: (event) => {
                event.preventDefault();
                state.canned.index = index;
                insert();
              },
            },
            el("span", { class: "canned-code", text: "/" + item.short_code }),
            el("span", { class: "canned-text", text: item.rendered || item.text }),
            item.personal ? el("span", { class: "canned-personal", text: "personal" }) : null
          )
        )
      : [el("li", { class: "canned-empty", text: "No canned response matches. Add some in Details." })])
  );
  picker.hidden = false;
  if (items.length) $("composer-text").setAttribute("aria-activedescendant", "canned-option-" + state.canned.index);
}

function insert() {
  const item = (state.canned.matches || [])[state.canned.index];
  if (!item) return;
  const text = $("composer-text");
  const next = insertCanned(text.value, state.canned.start, text.selectionStart, item.rendered || item.text);
  text.value = next.value;
  text.setSelectionRange(next.caret, next.caret);
  close();
  text.dispatchEvent(new Event("input"));
}

/** Arrow keys, Enter and Esc while the picker is open; returns true when the key was the picker's. */
export function cannedKeydown(event) {
  if (!state.canned.open) return false;
  const count = (state.canned.matches || []).length;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    if (count) state.canned.index = (state.canned.index + (event.key === "ArrowDown" ? 1 : count - 1)) % count;
    render();
  } else if (event.key === "Enter" || event.key === "Tab") {
    if (!count) return false;
    insert();
  } else if (event.key === "Escape") {
    close();
  } else return false;
  event.preventDefault();
  event.stopPropagation();
  return true;
}

export function openCannedFromShortcut() {
  const text = $("composer-text");
  if (text.disabled) return;
  const at = text.selectionStart ?? text.value.length;
  const needsSpace = at > 0 && !/\s/.test(text.value[at - 1]);
  text.setRangeText((needsSpace ? " " : "") + "/", at, at, "end");
  updateCannedPicker();
}

// Managed from the details pane: the inbox's shared responses and my own.
export function renderCannedManager() {
  const conv = currentConv();
  if (!conv) return;
  $("canned-manager").replaceChildren(
    ...state.canned.items.map((item) =>
      el(
        "li",
        { class: "manager-row" },
        el("span", { class: "canned-code", text: "/" + item.short_code }),
        el("span", { class: "canned-text", text: item.text }),
        item.personal ? el("span", { class: "canned-personal", text: "personal" }) : null,
        el("button", {
          type: "button",
          class: "link-button",
          text: "Delete",
          "aria-label": "Delete /" + item.short_code,
          onclick: async () => {
            const result = await api("DELETE", "canned-responses/" + item.id + "/");
            if (!result.ok) apiError(result);
            forgetCanned();
            loadCanned();
          },
        })
      )
    )
  );
}

export async function createCanned(event) {
  event.preventDefault();
  const conv = currentConv();
  if (!conv) return;
  const result = await api("POST", "canned-responses/", {
    inbox: conv.inbox.id,
    short_code: $("new-canned-code").value,
    text: $("new-canned-text").value,
    personal: $("new-canned-personal").checked,
  });
  if (!result.ok) return apiError(result, "The canned response was not saved.");
  $("new-canned-code").value = "";
  $("new-canned-text").value = "";
  forgetCanned();
  loadCanned();
}

export function showCannedManager() {
  loadCanned();
}
