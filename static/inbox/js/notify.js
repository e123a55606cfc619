// Getting an agent's attention: a sound and (opt-in) a browser notification for new conversations,
// mentions and customer messages in conversations assigned to them.
import { $ } from "./dom.js";

let audio = null;

export function beep() {
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.08, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.25);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.25);
  } catch (e) {
    /* no audio: the toast and the title still tell */
  }
  window.__beeps = (window.__beeps || 0) + 1;
}

export function notificationsState() {
  if (!("Notification" in window)) return "unsupported";
  return Notification.permission;
}

export function renderNotifyButton() {
  const button = $("notify-button");
  const stateNow = notificationsState();
  button.hidden = stateNow === "unsupported" || stateNow === "granted";
  button.title = stateNow === "denied" ? "Notifications are blocked in this browser's settings" : "Show browser notifications";
  button.disabled = stateNow === "denied";
}

export async function askPermission() {
  if (notificationsState() === "default") await Notification.requestPermission();
  renderNotifyButton();
}

/** Tell the agent: always a sound; a system notification when allowed and the page is not in front. */
export function alertAgent(title, body, onClick) {
  beep();
  if (notificationsState() !== "granted" || document.visibilityState === "visible") return;
  const notification = new Notification(title, { body, tag: title });
  notification.onclick = () => {
    window.focus();
    onClick();
    notification.close();
  };
}
