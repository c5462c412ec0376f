// Dashboard: today's P&L (total and per account), account lights, copies, latency and histogram.
import { get } from "./api.js";
import { el, money, ms, signClass } from "./dom.js";

export function mount(root) {
  const cards = el("div", { class: "cards", id: "dash-cards" });
  const perAccount = el("tbody");
  const canvas = el("canvas", { class: "histogram", id: "latency-histogram" });
  root.append(cards,
    el("div", { class: "grid2" },
      el("section", { class: "panel" }, el("h2", {}, "Copy latency today (leader seen → follower ack)"), canvas),
      el("section", { class: "panel" }, el("h2", {}, "P&L today by account"),
        el("div", { class: "table-wrap log" }, el("table", { id: "pnl-today" },
          el("thead", {}, el("tr", {}, el("th", {}, "Account"), el("th", { class: "num" }, "Copies"), el("th", { class: "num" }, "P&L today"))),
          perAccount)))));

  async function refresh() {
    const d = await get("/api/dashboard");
    const card = (label, value, cls = "", id = "") => el("div", { class: "card", id }, el("div", { class: "label" }, label), el("div", { class: "value " + cls }, value));
    cards.replaceChildren(
      card("P&L today (realised)", money(d.pnl_today), signClass(d.pnl_today), "card-pnl"),
      card("Accounts up / degraded / down", `${d.accounts.up} / ${d.accounts.degraded} / ${d.accounts.down}`, "", "card-accounts"),
      card("Copies today", d.copies_today.toLocaleString(), "", "card-copies"),
      card("Latency p50", ms(d.latency_ms.p50), "", "card-p50"),
      card("Latency p99", ms(d.latency_ms.p99), "", "card-p99"),
      card("Copying", d.paused_all ? "PAUSED" : "on", d.paused_all ? "neg" : "pos", "card-copying"));
    perAccount.replaceChildren(...d.per_account.map((a) => el("tr", {},
      el("td", {}, a.account_id, a.role === "leader" ? " (leader)" : ""), el("td", { class: "num" }, a.copies_today),
      el("td", { class: "num " + signClass(a.pnl_today) }, money(a.pnl_today)))));
    drawHistogram(canvas, d.histogram);
  }

  refresh();
  const timer = setInterval(refresh, 2000);
  return { unmount() { clearInterval(timer); } };
}

function drawHistogram(canvas, { edges_ms: edges, counts }) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const labels = edges.map((e, i) => `<${e}`).concat([`≥${edges[edges.length - 1]}`]);
  const max = Math.max(1, ...counts);
  const slot = width / counts.length, base = height - 20;
  g.font = "11px system-ui"; g.textAlign = "center";
  counts.forEach((count, i) => {
    const h = (count / max) * (base - 16);
    g.fillStyle = "#4c8dff";
    g.fillRect(i * slot + 4, base - h, slot - 8, h);
    g.fillStyle = "#8b98a9";
    g.fillText(labels[i] + " ms", i * slot + slot / 2, height - 5);
    if (count) { g.fillStyle = "#e6edf3"; g.fillText(String(count), i * slot + slot / 2, base - h - 4); }
  });
}
