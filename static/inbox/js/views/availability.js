// The agent's availability (online / busy / offline) in the top bar, and the colleagues' in the assign menu.
import { api } from "../ctx.js";
import { $, apiError } from "../dom.js";

const LABELS = { online: "Online", busy: "Busy", offline: "Offline" };

function show(data) {
  const select = $("availability");
  select.value = data.status;
  select.dataset.status = data.effective_status;
  select.title =
    data.status === data.effective_status
      ? "Your availability: " + LABELS[data.status]
      : "You chose " + LABELS[data.status] + "; others see you offline until this page is connected";
}

export async function loadAvailability() {
  const result = await api("GET", "availability/");
  if (result.ok) show(result.data);
}

export function bindAvailability() {
  const select = $("availability");
  select.addEventListener("change", async () => {
    const result = await api("POST", "availability/", { status: select.value });
    if (!result.ok) {
      apiError(result);
      loadAvailability();
      return;
    }
    show(result.data);
  });
}

/** The assign menu's groups: online, busy, offline (empty ones left out), each member in the API's order. */
export function memberGroups(members) {
  return Object.keys(LABELS)
    .map((status) => [LABELS[status], members.filter((member) => member.status === status)])
    .filter(([, group]) => group.length > 0);
}

export function memberTitle(member) {
  return LABELS[member.status] + " · " + member.open_conversations + " of " + member.capacity + " open conversations";
}
