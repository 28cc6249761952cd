// The API client: JSON in and out, the API's one error shape turned into one line, and the
// token dialog when the server needs a token this browser has not presented yet.

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

let signingIn = null;

export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`/api${path}`, init);
  if (response.status === 401 && path !== "/session") {
    await signIn();
    return api(path, { method, body, signal });
  }
  if (response.status === 204) return null;
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    const error = data && data.error ? data.error : { code: "http_error", message: `${response.status} ${response.statusText}` };
    throw new ApiError(response.status, error.code, error.message, data);
  }
  return data;
}

function signIn() {
  if (signingIn) return signingIn;
  const dialog = document.getElementById("login");
  const form = document.getElementById("login-form");
  const problem = form.querySelector(".error");
  signingIn = new Promise((resolve) => {
    const submit = async (event) => {
      event.preventDefault();
      const token = form.elements.token.value;
      try {
        await api("/session", { method: "POST", body: { token } });
        form.removeEventListener("submit", submit);
        dialog.close();
        signingIn = null;
        resolve();
      } catch (error) {
        problem.textContent = error.message;
        problem.hidden = false;
      }
    };
    form.addEventListener("submit", submit);
    dialog.addEventListener("cancel", (event) => event.preventDefault());
    dialog.showModal();
    form.elements.token.focus();
  });
  return signingIn;
}

export function packPath(name) {
  return `/packs/${encodeURIComponent(name)}`;
}
