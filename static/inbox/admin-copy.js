// Admin: "Copy" buttons next to values an admin pastes elsewhere (the webhook URL). No inline script (CSP).
document.addEventListener("click", async (event) => {
  const button = event.target.closest(".copy-button");
  if (!button) return;
  const source = document.getElementById(button.dataset.copyTarget);
  if (!source) return;
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
  } catch (e) {
    window.getSelection().selectAllChildren(source); // no clipboard access: selected, ready for Ctrl+C
    button.textContent = "Selected — press Ctrl+C";
  }
  setTimeout(() => (button.textContent = "Copy"), 2000);
});
