// The live link (/ws/inbox/): reconnects with backoff; after each (re)connect the page refetches from REST.

export function connectLive({ path, onEvent, onHello, onStatus, onRefused }) {
  const live = { socket: null, attempt: 0, timer: null, ping: null, countdown: null };

  function connect() {
    clearTimeout(live.timer);
    onStatus("connecting");
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    let socket;
    try {
      socket = new WebSocket(scheme + location.host + path);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    live.socket = socket;
    socket.addEventListener("message", (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (e) {
        return;
      }
      if (event.type === "hello") {
        live.attempt = 0;
        onStatus("live");
        onHello();
      } else if (event.type !== "pong") onEvent(event);
    });
    socket.addEventListener("open", () => {
      clearInterval(live.ping);
      live.ping = setInterval(() => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify({ type: "ping" })), 25000);
    });
    socket.addEventListener("close", (event) => {
      clearInterval(live.ping);
      if (live.socket !== socket) return;
      live.socket = null;
      if (event.code === 4401) onRefused();
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    const delay = Math.min(30000, 1000 * 2 ** live.attempt) * (0.6 + Math.random() * 0.4);
    live.attempt = Math.min(live.attempt + 1, 6);
    const until = Date.now() + delay;
    const tick = () => {
      const seconds = Math.ceil((until - Date.now()) / 1000);
      onStatus("down", seconds > 0 ? "reconnecting in " + seconds + "s" : "reconnecting…");
    };
    tick();
    clearInterval(live.countdown);
    live.countdown = setInterval(tick, 1000);
    live.timer = setTimeout(() => {
      clearInterval(live.countdown);
      connect();
    }, delay);
  }

  window.addEventListener("online", () => {
    if (!live.socket) {
      clearInterval(live.countdown);
      live.attempt = 0;
      connect();
    }
  });

  connect();
}
