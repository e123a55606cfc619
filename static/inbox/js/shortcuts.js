// Keyboard: j/k next/previous conversation, e resolve, a assign, n note, / canned, ? help, Esc leaves the composer.
import { state } from "./ctx.js";
import { $ } from "./dom.js";
import { neighbour } from "./store.js";

function typingInField(target) {
  return target.closest("input, textarea, select, [contenteditable]") !== null;
}

export function bindShortcuts(actions) {
  document.addEventListener("keydown", (event) => {
    if (event.metaKey || event.ctrlKey || event.altKey) return;
    if (event.key === "Escape") {
      if (!$("help-overlay").hidden) {
        $("help-overlay").hidden = true;
        return;
      }
      if (typingInField(event.target)) event.target.blur();
      actions.escape();
      return;
    }
    if (typingInField(event.target)) return;
    switch (event.key) {
      case "j":
      case "k": {
        const id = neighbour(state, event.key === "j" ? 1 : -1);
        if (id !== null) actions.open(id);
        break;
      }
      case "e":
        if (state.currentId) actions.resolve();
        break;
      case "a":
        if (state.currentId) actions.assign();
        break;
      case "n":
        if (state.currentId) actions.noteMode();
        break;
      case "/":
        if (state.currentId) actions.canned();
        break;
      case "?":
        $("help-overlay").hidden = !$("help-overlay").hidden;
        break;
      default:
        return;
    }
    event.preventDefault();
  });
}
