// Risk guards per follower, on the Accounts page: the rules in force (the config's, or the last
// saved here), the follower's standing against them, and a form that replaces them live
// (PUT /api/guards/{account}: every executor uses them for the account's next copy).
import { get, request } from "./api.js";
import { el, time, toast } from "./dom.js";

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const BREACH = ["flatten_and_pause", "block"];

// A whole number goes as a number; anything else as typed, so the server names the field
// instead of a typo silently removing a rule.
function count(text) {
  return /^\d+$/.test(text) ? Number(text) : text;
}

export function mountGuards(root) {
  const pick = el("select", { name: "guards-account", id: "guards-account" });
  const form = el("form", { id: "guards-form", class: "form-grid", novalidate: true });
  const formError = el("p", { class: "form-error", hidden: true });
  const rules = el("ul", { id: "guards-rules", class: "muted" });
  const standing = el("ul", { id: "guards-standing" });
  const source = el("p", { id: "guards-source", class: "muted" });
  root.append(el("section", { class: "panel", id: "guards-panel" }, el("h2", {}, "Risk guards"),
    el("p", {}, "Follower ", pick), form, formError, source,
    el("div", { class: "form-grid" }, el("div", {}, el("strong", {}, "Rules"), rules), el("div", {}, el("strong", {}, "Standing"), standing))));

  let account = null;

  // One input per field of the YAML's guards: block; data-path is the API's name for it.
  function input(path, value, attrs = {}) {
    return el("input", { name: path, dataset: { path }, value: value ?? "", ...attrs });
  }
  function choice(path, options, value) {
    return el("select", { name: path, dataset: { path } }, options.map((o) => el("option", { value: o, selected: o === value }, o)));
  }
  const field = (label, control) => el("label", {}, label, control, el("span", { class: "field-error", dataset: { for: control.name } }));

  function show(data) {
    const g = data.guards || {};
    const daily = g.daily_loss || {};
    const drawdown = g.trailing_drawdown || {};
    const win = g.window || {};
    const days = new Set(win.days || DAYS.slice(0, 5));
    form.replaceChildren(
      field("Max contracts per symbol", input("max_contracts_per_symbol", g.max_contracts_per_symbol, { inputmode: "numeric" })),
      field("Max contracts in total", input("max_contracts_total", g.max_contracts_total, { inputmode: "numeric" })),
      field("Max orders a minute", input("max_orders_per_minute", g.max_orders_per_minute, { inputmode: "numeric" })),
      field("Daily loss limit", input("daily_loss.limit", daily.limit, { inputmode: "decimal", placeholder: "none" })),
      field("On daily loss", choice("daily_loss.on_breach", BREACH, daily.on_breach)),
      field("Trailing drawdown", input("trailing_drawdown.limit", drawdown.limit, { inputmode: "decimal", placeholder: "none" })),
      field("Drawdown basis", choice("trailing_drawdown.basis", ["intraday", "end_of_day"], drawdown.basis)),
      field("Stop trailing at", input("trailing_drawdown.stop_trailing_at", drawdown.stop_trailing_at, { inputmode: "decimal" })),
      field("On drawdown", choice("trailing_drawdown.on_breach", BREACH, drawdown.on_breach)),
      field("Window start (HH:MM)", input("window.start", win.start, { placeholder: "none" })),
      field("Window end (HH:MM)", input("window.end", win.end)),
      field("Window time zone", input("window.tz", win.tz, { placeholder: "America/Chicago" })),
      el("fieldset", { class: "days" }, el("legend", {}, "Window opens on"),
        DAYS.map((d) => el("label", {}, el("input", { type: "checkbox", name: `day-${d}`, checked: days.has(d) }), d)),
        el("span", { class: "field-error", dataset: { for: "window.days" } })),
      field("Day's time zone", input("tz", g.tz, { placeholder: "UTC" })),
      field("Day starts (HH:MM)", input("day_starts", g.day_starts, { placeholder: "00:00" })),
      el("div", {}, el("button", { type: "submit", class: "primary", id: "guards-save" }, "Save guards")));
    rules.replaceChildren(...(data.rules.length ? data.rules : ["none"]).map((r) => el("li", {}, r)));
    standing.replaceChildren(...data.standing.map((s) => el("li", {}, s)));
    source.textContent = data.source === "dashboard"
      ? `Set here by ${data.updated_by} at ${time(data.updated_at)}; overrides the config file.`
      : "From the config file.";
  }

  function body() {
    const v = (name) => form.elements[name].value.trim();
    const out = {};
    for (const name of ["max_contracts_per_symbol", "max_contracts_total", "max_orders_per_minute"]) {
      if (v(name)) out[name] = count(v(name));
    }
    if (v("daily_loss.limit")) out.daily_loss = { limit: v("daily_loss.limit"), on_breach: v("daily_loss.on_breach") };
    if (v("trailing_drawdown.limit")) {
      out.trailing_drawdown = { limit: v("trailing_drawdown.limit"), basis: v("trailing_drawdown.basis"), on_breach: v("trailing_drawdown.on_breach") };
      if (v("trailing_drawdown.stop_trailing_at")) out.trailing_drawdown.stop_trailing_at = v("trailing_drawdown.stop_trailing_at");
    }
    if (v("window.start") || v("window.end")) {
      out.window = { start: v("window.start"), end: v("window.end"), days: DAYS.filter((d) => form.elements[`day-${d}`].checked) };
      if (v("window.tz")) out.window.tz = v("window.tz");
    }
    if (v("tz")) out.tz = v("tz");
    if (v("day_starts")) out.day_starts = v("day_starts");
    return out;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const span of form.querySelectorAll(".field-error")) span.textContent = "";
    formError.hidden = true;
    try {
      show(await request("PUT", `/api/guards/${encodeURIComponent(account)}`, body()));
      toast(`${account}: guards saved`);
    } catch (error) {
      for (const [name, reason] of Object.entries(error.fields || {})) {
        const span = form.querySelector(`.field-error[data-for="${CSS.escape(name.replace(/\[\d+\]$/, ""))}"]`);
        if (span) span.textContent = reason;
      }
      formError.textContent = error.message + (Object.keys(error.fields || {}).length
        ? ": " + Object.entries(error.fields).map(([k, r]) => `${k} ${r}`).join("; ") : "");
      formError.hidden = false;
    }
  });

  async function load(id) {
    account = id;
    formError.hidden = true;
    show(await get(`/api/guards/${encodeURIComponent(id)}`));
  }

  pick.addEventListener("change", () => load(pick.value));

  (async () => {
    const groups = (await get("/api/copy-groups")).groups;
    const followers = [...new Set(groups.flatMap((g) => g.followers.map((f) => f.account)))].sort();
    pick.replaceChildren(...followers.map((id) => el("option", { value: id }, id)));
    if (followers.length) await load(followers[0]);
  })();
}
