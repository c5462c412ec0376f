// Login page: posts the form as JSON with the login CSRF token (double-submit cookie).
const form = document.getElementById("login-form");
const errorBox = document.getElementById("login-error");

function cookie(name) {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : "";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorBox.hidden = true;
  const body = { username: form.username.value.trim(), password: form.password.value };
  const next = new URLSearchParams(location.search).get("next");
  if (next) body.next = next.slice(0, 300);
  const response = await fetch("/api/session", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": cookie("ct_login") },
    body: JSON.stringify(body),
  });
  if (response.ok) {
    // The server decides where to go (web.redirects.safe_next): always a path on this site.
    const data = await response.json().catch(() => ({}));
    location.href = typeof data.next === "string" && /^\/(?![\/\\])/.test(data.next) ? data.next : "/trading";
    return;
  }
  const data = await response.json().catch(() => ({}));
  errorBox.textContent = data.fields ? Object.entries(data.fields).map(([k, v]) => `${k}: ${v}`).join("; ") : (data.error || "Sign-in failed");
  errorBox.hidden = false;
  form.password.value = "";
  if (response.status === 403) setTimeout(() => location.reload(), 1500);
});
