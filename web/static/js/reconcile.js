// Reconciliation on the account grid: the "Reconcile" button (POST /api/reconcile, answered on
// the grid stream) and each follower's sync badge: in sync / drifted since when and by how much
// per symbol / unavailable with the reason.
import { post } from "./api.js";
import { el, toast } from "./dom.js";

export function reconcileButton() {
  return el("button", { id: "reconcile-all", title: "compare every follower's broker positions and working orders with its copy group now", onclick: () => reconcile() }, "Reconcile");
}

export async function reconcile(account) {
  try {
    await post("/api/reconcile", account ? { account_id: account } : {});
    toast(account ? `${account}: reconciling` : "Reconciling every follower");
  } catch (error) {
    toast(error.message);
  }
}

export function syncBadge() {
  return el("span", { class: "badge sync", hidden: true });
}

function since(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleTimeString() : "";
}

export function showSync(badge, row) {
  if (!row.sync || row.sync === "leader") { badge.hidden = true; return; }
  badge.hidden = false;
  badge.className = `badge sync ${row.sync}`;
  badge.dataset.sync = row.sync;
  const drift = Object.entries(row.drift || {}).map(([s, d]) => `${s} ${d.difference > 0 ? "+" : ""}${d.difference}`);
  const extra = [row.orphans ? `${row.orphans} orphan` : "", row.missing_orders ? `${row.missing_orders} missing` : ""].filter(Boolean);
  const label = { in_sync: "in sync", drifted: "drifted", unavailable: "unknown" }[row.sync] || row.sync;
  badge.textContent = row.sync === "drifted" ? `${label} ${[...drift, ...extra].join(", ")}` : label;
  badge.title = [`${label} since ${since(row.sync_since)}`, `checked ${since(row.sync_checked_at)}`, row.sync_reason || ""].filter(Boolean).join(" · ");
}
