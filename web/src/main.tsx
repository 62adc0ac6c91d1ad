import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, call, download, session, upload } from "./api";
import type { FileItem, FilePage, NotificationPage, Session } from "./api";
import "./styles.css";

/** An API failure as a sentence a person can act on. */
function readable(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  return "Something went wrong; check your connection and try again.";
}

function Auth({ onSignedIn }: { onSignedIn: () => void }) {
  const [mode, setMode] = useState<"login" | "register">("login");
  const [error, setError] = useState("");
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
      <form onSubmit={submit} aria-describedby={error ? "auth-error" : undefined}>
        <h2>{mode === "login" ? "Log in" : "Create an account"}</h2>
        <label>
          Username
          <input name="username" autocomplete="username" required minLength={3} maxLength={32} />
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
        {error && (
          <p id="auth-error" class="error" role="alert">
            {error}
          </p>
        )}
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

type Scope = "owned" | "shared" | "all";

interface Upload {
  name: string;
  progress: number;
  error?: string;
  cancel: AbortController;
}

function Files({ onSignedOut }: { onSignedOut: () => void }) {
  const [scope, setScope] = useState<Scope>("all");
  const [query, setQuery] = useState("");
  const [files, setFiles] = useState<FileItem[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState("");
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [unread, setUnread] = useState(0);

  async function load(from: string | null) {
    const params = new URLSearchParams({ scope, limit: "50" });
    if (query) params.set("q", query);
    if (from) params.set("cursor", from);
    try {
      const page = await call<FilePage>("GET", `/api/files?${params}`);
      setFiles((shown) => (from ? [...shown, ...page.files] : page.files));
      setCursor(page.next_cursor ?? null);
      setError("");
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 401) return onSignedOut();
      setError(readable(failure));
    }
  }

  useEffect(() => {
    void load(null);
  }, [scope, query]);

  useEffect(() => {
    call<NotificationPage>("GET", "/api/notifications?status=unread&limit=1")
      .then((page) => setUnread(page.unread_count))
      .catch(() => setUnread(0));
  }, [files]);

  function send(chosen: FileList | null) {
    for (const file of Array.from(chosen ?? [])) {
      const entry: Upload = { name: file.name, progress: 0, cancel: new AbortController() };
      const update = (change: Partial<Upload>) =>
        setUploads((all) => all.map((u) => (u === entry ? Object.assign(entry, change) && { ...entry } : u)));
      setUploads((all) => [...all, entry]);
      upload(file, (progress) => update({ progress }), entry.cancel.signal)
        .then(() => {
          setUploads((all) => all.filter((u) => u.name !== entry.name || u.progress < 1 || u.error));
          void load(null);
        })
        .catch((failure) => update({ error: readable(failure) }));
    }
  }

  async function act(work: () => Promise<unknown>) {
    try {
      await work();
      await load(null);
    } catch (failure) {
      setError(readable(failure));
    }
  }

  return (
    <main
      class="files"
      onDragOver={(event) => event.preventDefault()}
      onDrop={(event) => {
        event.preventDefault();
        send(event.dataTransfer?.files ?? null);
      }}
    >
      <header>
        <h1>spindrive</h1>
        <span class="bell" aria-label={`${unread} unread notifications`} title="Unread notifications">
          🔔 {unread}
        </span>
        <button
          type="button"
          onClick={() => act(() => call("POST", "/api/auth/logout")).finally(() => (session.clear(), onSignedOut()))}
        >
          Log out
        </button>
      </header>
      <nav aria-label="Which files">
        {(["all", "owned", "shared"] as Scope[]).map((each) => (
          <button type="button" aria-pressed={scope === each} onClick={() => setScope(each)}>
            {each === "all" ? "All" : each === "owned" ? "Mine" : "Shared with me"}
          </button>
        ))}
        <label class="search">
          Search
          <input type="search" value={query} onChange={(event) => setQuery(event.currentTarget.value)} />
        </label>
        <label class="upload">
          Upload files
          <input type="file" multiple onChange={(event) => send(event.currentTarget.files)} />
        </label>
      </nav>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {uploads.length > 0 && (
        <ul class="uploads" aria-label="Uploads">
          {uploads.map((entry) => (
            <li>
              {entry.name}{" "}
              {entry.error ? (
                <span class="error">{entry.error}</span>
              ) : (
                <>
                  <progress value={entry.progress} max={1} aria-label={`Uploading ${entry.name}`} />
                  <button type="button" onClick={() => entry.cancel.abort()}>
                    Cancel
                  </button>
                </>
              )}
            </li>
          ))}
        </ul>
      )}
      <table>
        <caption class="visually-hidden">Files</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Size</th>
            <th scope="col">Owner</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {files.map((file) => (
            <tr key={file.id}>
              <td>{file.file_name}</td>
              <td>{file.size.toLocaleString()} B</td>
              <td>{file.owner.username}</td>
              <td>
                <button type="button" onClick={() => act(() => download(file))}>
                  Download
                </button>
                {file.my_permission !== "read" && (
                  <button
                    type="button"
                    onClick={() => {
                      const name = prompt("New name", file.file_name);
                      if (name) void act(() => call("PATCH", `/api/files/${file.id}`, { file_name: name }));
                    }}
                  >
                    Rename
                  </button>
                )}
                {file.my_permission === "delete" && (
                  <button
                    type="button"
                    onClick={() => {
                      if (confirm(`Delete “${file.file_name}”?`)) void act(() => call("DELETE", `/api/files/${file.id}`));
                    }}
                  >
                    Delete
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {files.length === 0 && !error && <p>No files here yet: drop some on this page or use Upload.</p>}
      {cursor && (
        <button type="button" onClick={() => load(cursor)}>
          Load more
        </button>
      )}
    </main>
  );
}

function App() {
  const [signedIn, setSignedIn] = useState(session.token() !== null);
  return signedIn ? (
    <Files onSignedOut={() => (session.clear(), setSignedIn(false))} />
  ) : (
    <Auth onSignedIn={() => setSignedIn(true)} />
  );
}

render(<App />, document.getElementById("app")!);
