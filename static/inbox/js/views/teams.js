// Teams (routing): the chip on list rows and the list filter; teams are managed in admin, handed out by rules.
import { api, state } from "../ctx.js";
import { $, el } from "../dom.js";
import { teamChoices } from "../store.js";

export async function loadTeams() {
  const result = await api("GET", "teams/");
  if (!result.ok) return;
  state.teams = result.data;
  renderTeamFilter();
}

export function teamChip(conv) {
  if (!conv.team) return null;
  return el("span", { class: "team-chip", dataset: { team: String(conv.team.id) }, text: "👥 " + conv.team.name, title: "Team " + conv.team.name });
}

export function renderTeamFilter() {
  const select = $("team-filter");
  const choices = teamChoices(state.teams);
  select.replaceChildren(el("option", { value: "", text: "All teams" }), ...choices.map((choice) => el("option", choice)));
  select.value = choices.some((choice) => choice.value === state.team) ? state.team : "";
  select.hidden = choices.length === 0 && !state.team;
}
