// What every module of the page shares: the server's config, the state, the API client.
import { createApi } from "./api.js";
import { createState, parseFilters } from "./store.js";

export const config = JSON.parse(document.getElementById("inbox-config").textContent);
export const ME = config.user.id;
export const api = createApi({ base: config.api, loginUrl: config.login_url });

function savedFilters() {
  try {
    return JSON.parse(localStorage.getItem("inbox.filters") || "{}");
  } catch (e) {
    return {};
  }
}

export const state = createState({ me: ME, filters: parseFilters(location.search, savedFilters()) });

export function conversationUrl(id) {
  return config.conversation_url.replace("/0/", "/" + id + "/");
}

// Views call each other through these (set by main.js), so modules import only downwards: no import
// cycles, which the hashed static files of production cannot express.
export const actions = {
  openConversation: null,
  renderThread: null,
  renderThreadChrome: null,
  refreshConversation: null,
  applyConversation: null,
};

export function currentConv() {
  return state.convs.get(state.currentId);
}
