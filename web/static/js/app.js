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

// The two vendored libraries (scripts/vendor-web.sh, built into the wheel and the image). A
// build without them would serve a dashboard with no live push and no chart, said only in the
// browser console: say it on the page instead.
function checkVendoredLibraries() {
  const missing = [];
  if (!window.io) missing.push("socket.io-client (live updates)");
  if (!window.LightweightCharts) missing.push("lightweight-charts (fills chart)");
  if (!missing.length) return true;
  const banner = document.createElement("div");
  banner.id = "vendor-missing";
  banner.className = "banner error";
  banner.setAttribute("role", "alert");
  banner.textContent = `This installation lacks its browser libraries: ${missing.join(", ")}. ` +
    "Install a wheel or image built with them (scripts/vendor-web.sh before building).";
  document.body.prepend(banner);
  return false;
}

async function main() {
  checkVendoredLibraries();
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
