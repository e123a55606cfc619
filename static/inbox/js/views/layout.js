// Panes: on a phone one at a time (list → thread → details, with Back); wider, the details pane toggles.
import { state } from "../ctx.js";
import { $ } from "../dom.js";

export function setPane(pane) {
  state.pane = pane;
  document.body.dataset.pane = pane;
}

function showDetails() {
  document.body.dataset.details = state.panelOpen ? "open" : "closed";
  $("side-panel").hidden = !state.panelOpen;
  $("details-button").setAttribute("aria-expanded", String(state.panelOpen));
}

export function toggleDetails(open) {
  state.panelOpen = open === undefined ? !state.panelOpen : open;
  showDetails();
  if (state.panelOpen) setPane("details");
  else if (state.pane === "details") setPane(state.currentId ? "thread" : "list");
}

/** Wide screens start with the details pane open beside the thread; narrower ones open it on demand. */
export function initialLayout() {
  state.panelOpen = window.matchMedia("(min-width: 1181px)").matches;
  showDetails();
  setPane("list");
}
