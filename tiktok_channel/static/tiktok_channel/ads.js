// The Ads page's live hints: an ad's review result (approved / rejected) updates its badge. Push is a hint:
// a reload shows the same from the server.
const WORDS = { pending: "In review", approved: "Approved", rejected: "Rejected" };

export function applyReview(root, event) {
  for (const badge of root.querySelectorAll("[data-ad-review]")) {
    if (badge.dataset.adReview !== event.ad_id) continue;
    badge.textContent = WORDS[event.review_status] || event.review_status;
    badge.className = `ads-badge ads-review ads-review-${event.review_status}`;
  }
}

function connect(delay = 1000) {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(`${scheme}${location.host}/ws/staff/`);
  socket.addEventListener("message", (message) => {
    let data;
    try { data = JSON.parse(message.data); } catch { return; }
    // The server says hello once this socket has joined its groups: from then on nothing is missed.
    if (data.type === "hello") document.body.dataset.live = "open";
    if (data.type === "ad.review_changed") applyReview(document, data);
  });
  socket.addEventListener("close", () => {
    delete document.body.dataset.live;
    setTimeout(() => connect(Math.min(delay * 2, 30000)), delay);
  });
}

if (typeof document !== "undefined" && document.querySelector("[data-ad-review]")) connect();
