// AccountGrid: one row per account, updated in place from the "grid" stream.
import { get, post } from "./api.js";
import { el, money, ms, signClass, toast } from "./dom.js";
import { reconcileButton, showSync, syncBadge } from "./reconcile.js";

// Test and diagnostics hook: when each account first showed each copied leader signal.
const metrics = (window.ctMetrics ||= { shown: {}, detected: {} });

export class AccountGrid {
  constructor(container) {
    this.rows = new Map();
    this.body = el("tbody");
    this.pauseAll = el("button", { id: "pause-all", onclick: () => this.togglePauseAll() }, "Pause all copying");
    this.pausedAll = false;
    container.append(
      el("div", { class: "toolbar" },
        el("h2", {}, "Accounts"), el("span", { class: "spacer" }), reconcileButton(), this.pauseAll,
        el("button", { id: "flatten-all", class: "danger", onclick: () => this.flatten("*") }, "Flatten all followers"),
        el("button", { id: "kill-switch", class: "danger", title: "pause all copying, cancel every follower order, close every follower position", onclick: () => this.kill() }, "Kill switch")),
      el("div", { class: "table-wrap" }, el("table", { id: "account-grid" },
        el("thead", {}, el("tr", {},
          el("th", { class: "sticky" }, "Account"), el("th", { class: "hide-sm" }, "Platform"), el("th", {}, "Status"),
          el("th", {}, "Position"), el("th", { class: "num hide-sm" }, "Open"), el("th", { class: "num" }, "P&L"),
          el("th", { class: "num hide-sm" }, "Last copy"), el("th", { class: "hide-sm" }, "Last signal"),
          el("th", {}, "Copying"), el("th", {}, ""))),
        this.body)),
    );
    this.guards = {};
    this.pollGuards();
  }

  // Risk guards: each guarded follower's standing ("daily loss 312.00/500.00", "outside window")
  // under its name, from /api/guards every 2 s while the grid is on the page and some have guards.
  async pollGuards() {
    try {
      this.guards = (await get("/api/guards")).accounts || {};
    } catch {
      this.guards = {};
    }
    for (const [account, tr] of this.rows) this.showGuards(account, tr);
    if (Object.keys(this.guards).length && this.body.isConnected) setTimeout(() => this.pollGuards(), 2000);
  }

  showGuards(account, tr) {
    const guards = this.guards[account];
    tr._cells.guards.textContent = guards ? guards.standing.join(" · ") : "";
    tr._cells.guards.title = guards ? `Guards: ${guards.rules.join("; ")}` : "";
    tr.dataset.guarded = String(Boolean(guards));
  }

  snapshot(rows) {
    this.rows.clear();
    this.body.replaceChildren();
    for (const row of rows) this.update(row, false);
  }

  update(row, flash = true) {
    if (row.account_id === undefined) return;
    let tr = this.rows.get(row.account_id);
    const isNew = !tr;
    if (isNew) {
      tr = this.build(row);
      this.rows.set(row.account_id, tr);
      this.body.append(tr);
      this.showGuards(row.account_id, tr);
    }
    const previous = tr.dataset.signal;
    tr.dataset.signal = row.last_signal || "";
    tr.dataset.skip = row.last_skip || "";
    tr.dataset.paused = String(Boolean(row.paused));
    tr.dataset.net = String(row.net);
    tr.dataset.light = row.light;
    const c = tr._cells;
    c.light.className = "light " + row.light;
    c.status.textContent = row.light === "unknown" ? "–" : row.connection;
    c.status.title = row.last_error || `${row.connection}, circuit ${row.circuit}`;
    const positions = Object.entries(row.positions).filter(([, q]) => q !== 0);
    c.position.textContent = positions.length ? positions.map(([s, q]) => `${q > 0 ? "+" : ""}${q} ${s}`).join(", ") : "flat";
    c.open.textContent = row.open_orders;
    showSync(c.sync, row);
    c.pnl.textContent = money(row.pnl);
    c.pnl.className = "num " + signClass(row.pnl);
    c.latency.textContent = ms(row.last_copy_ms);
    c.signal.textContent = row.last_outcome === "copied" ? (row.last_signal || "").split(":")[1] || "" : (row.last_outcome || "–");
    tr.dataset.outcome = row.last_outcome || "";
    c.toggle.checked = Boolean(row.paused) || Boolean(row.paused_all);
    c.toggle.disabled = Boolean(row.paused_all);
    c.toggle.title = row.paused ? "paused: new trades skip this account" : "copying";
    this.pausedAll = Boolean(row.paused_all);
    this.pauseAll.textContent = this.pausedAll ? "Resume all copying" : "Pause all copying";
    this.pauseAll.dataset.paused = String(this.pausedAll);
    if (row.last_signal && row.last_signal !== previous) {
      (metrics.shown[row.last_signal] ||= {})[row.account_id] = Date.now();
      if (row.last_detected) metrics.detected[row.last_signal] = row.last_detected;
      if (flash && !isNew) { tr.classList.remove("flash"); void tr.offsetWidth; tr.classList.add("flash"); }
    }
  }

  build(row) {
    const toggle = el("input", { type: "checkbox", "aria-label": `pause ${row.account_id}` });
    toggle.addEventListener("change", () => this.setPaused(row.account_id, toggle.checked, toggle));
    const cells = {
      light: el("span", { class: "light" }), status: el("span", { class: "hide-sm" }), position: el("td"), open: el("td", { class: "num hide-sm" }),
      sync: syncBadge(), pnl: el("td", { class: "num" }), latency: el("td", { class: "num hide-sm" }), signal: el("td", { class: "hide-sm muted" }), toggle,
      guards: el("div", { class: "muted guards" }),
    };
    const flatten = row.role === "follower"
      ? el("button", { class: "ghost", title: "flatten this account", onclick: () => this.flatten(row.account_id) }, "Flatten") : "";
    const tr = el("tr", { class: row.role, dataset: { account: row.account_id, role: row.role } },
      el("td", { class: "sticky" }, el("strong", {}, row.account_id), row.role === "leader" ? el("span", { class: "badge" }, " leader") : "", cells.guards),
      el("td", { class: "hide-sm" }, row.platform),
      el("td", {}, cells.light, cells.status, " ", cells.sync),
      cells.position, cells.open, cells.pnl, cells.latency, cells.signal,
      el("td", {}, row.role === "follower" ? el("label", { class: "switch" }, toggle, el("span")) : ""),
      el("td", {}, flatten));
    tr._cells = cells;
    return tr;
  }

  async setPaused(account, paused, toggle) {
    toggle.disabled = true;
    try {
      await post(`/api/controls/${paused ? "pause" : "resume"}`, { account_id: account });
      toast(`${account}: ${paused ? "paused" : "copying again"}`);
    } catch (error) {
      toggle.checked = !paused;
      toast(`${account}: ${error.message}`);
    } finally {
      toggle.disabled = false;
    }
  }

  async togglePauseAll() {
    const pause = !this.pausedAll;
    await post(`/api/controls/${pause ? "pause" : "resume"}`, { account_id: "*" }).catch((e) => toast(e.message));
    toast(pause ? "All copying paused" : "Copying resumed");
  }

  async kill() {
    if (!confirm("Kill switch: pause all copying, cancel every follower's working orders and close every follower position?")) return;
    try {
      const answer = await post("/api/controls/kill", {});
      toast(`Kill switch engaged: ${answer.flatten_accounts.length} follower account(s) flattening, copying paused`);
    } catch (error) {
      toast(error.message);
    }
  }

  async flatten(account) {
    const what = account === "*" ? "every follower account" : account;
    if (!confirm(`Flatten ${what}? Market orders close every open position.`)) return;
    try {
      const answer = await post("/api/controls/flatten", { account_id: account });
      toast(`Flatten sent: ${answer.flatten_accounts.length} account(s)`);
    } catch (error) {
      toast(error.message);
    }
  }
}
