// The dashboard shell: session, navigation between pages without reloads, live status light.
import { loadSession, request } from "./api.js";

const pages = {
  "/": () => import("./dashboard.js"),
  "/trading": () => import("./trading.js"),
  "/accounts": () => import("./accounts.js"),
  "/reports": () => import("./reports.js"),
};
let current = null;

export function setLive(state) {
  const dot = document.getElementById("conn");
  dot.className = "conn " + state;
  dot.title = state === "live" ? "live" : "reconnecting";
}

async function show(path) {
  const load = pages[path] || pages["/"];
  if (current && current.unmount) current.unmount();
  setLive("");
  const root = document.getElementById("page");
  root.replaceChildren();
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.getAttribute("href") === path);
  const module = await load();
  current = await module.mount(root, { setLive });
}

async function main() {
  const me = await loadSession();
  document.getElementById("whoami").textContent = me.username;
  document.getElementById("logout").addEventListener("click", async () => {
    await request("DELETE", "/api/session").catch(() => {});
    location.href = "/login";
  });
  document.getElementById("nav").addEventListener("click", (event) => {
    const link = event.target.closest("a");
    if (!link) return;
    event.preventDefault();
    history.pushState({}, "", link.getAttribute("href"));
    show(link.getAttribute("href"));
  });
  window.addEventListener("popstate", () => show(location.pathname));
  await show(location.pathname);
}

main();
