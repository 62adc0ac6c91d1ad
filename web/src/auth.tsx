import { useState } from "preact/hooks";
import { call, session } from "./api";
import type { Session } from "./api";
import { Alert, readable } from "./errors";

/** Log in, or register and log in; `problem` is why signing in did not
 * go through (the account could not be read). */
export function Auth({ onSignedIn, problem }: { onSignedIn: () => void; problem: string }) {
  const [mode, setMode] = useState<"login" | "register">("login");
  const [failed, setError] = useState("");
  const error = failed || problem;
  const [busy, setBusy] = useState(false);

  async function submit(event: Event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const username = String(form.get("username"));
    const password = String(form.get("password"));
    setBusy(true);
    setError("");
    try {
      if (mode === "register") {
        await call("POST", "/api/auth/register", { username, email: String(form.get("email")), password });
      }
      const signed = await call<Session>("POST", "/api/auth/login", { login: username, password });
      session.save(signed.token);
      onSignedIn();
    } catch (failure) {
      setError(readable(failure));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="auth">
      <h1>spindrive</h1>
      <form onSubmit={submit}>
        <h2>{mode === "login" ? "Log in" : "Create an account"}</h2>
        <label>
          Username
          <input
            name="username"
            autocomplete="username"
            required
            minLength={3}
            maxLength={mode === "register" ? 32 : 254}
            pattern={mode === "register" ? "[A-Za-z0-9_.\\-]{3,32}" : undefined}
            title={mode === "register" ? "3 to 32 letters, digits, _ . or -" : undefined}
          />
        </label>
        {mode === "register" && (
          <label>
            Email
            <input name="email" type="email" autocomplete="email" required />
          </label>
        )}
        <label>
          Password
          <input
            name="password"
            type="password"
            autocomplete={mode === "login" ? "current-password" : "new-password"}
            required
          />
        </label>
        <Alert message={error} />
        <button type="submit" disabled={busy}>
          {mode === "login" ? "Log in" : "Register"}
        </button>
        <button type="button" class="link" onClick={() => setMode(mode === "login" ? "register" : "login")}>
          {mode === "login" ? "No account? Register" : "Have an account? Log in"}
        </button>
      </form>
    </main>
  );
}
