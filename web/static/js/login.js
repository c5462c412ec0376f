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
  const response = await fetch("/api/session", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": cookie("ct_login") },
    body: JSON.stringify(body),
  });
  if (response.ok) {
    const next = new URLSearchParams(location.search).get("next");
    location.href = next && next.startsWith("/") && !next.startsWith("//") ? next : "/trading";
    return;
  }
  const data = await response.json().catch(() => ({}));
  errorBox.textContent = data.fields ? Object.entries(data.fields).map(([k, v]) => `${k}: ${v}`).join("; ") : (data.error || "Sign-in failed");
  errorBox.hidden = false;
  form.password.value = "";
  if (response.status === 403) setTimeout(() => location.reload(), 1500);
});
