import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, call, contentUrl, download, session, upload } from "./api";
import type { FileItem, FilePage, Job, Session, User } from "./api";
import { readable } from "./errors";
import { Modal } from "./modal";
import { Bell } from "./notifications";
import { ShareDialog } from "./share";
import "./styles.css";

/** Asks for a thumbnail and waits (two minutes at most) for its job; the
 * thumbnail's file id. */
async function thumbnail(file: FileItem): Promise<string> {
  let job = await call<Job>("POST", `/api/files/${file.id}/transformations`, {
    type: "thumbnail",
    params: { size: 128 },
  });
  const deadline = Date.now() + 120_000;
  for (let wait = 250; job.status === "pending" || job.status === "running"; wait = Math.min(wait * 2, 2000)) {
    if (Date.now() > deadline) throw new ApiError(0, "job_slow", "the thumbnail is taking long; try again later");
    await new Promise((resolve) => setTimeout(resolve, wait));
    job = await call<Job>("GET", `/api/transformations/${job.id}`);
  }
  if (job.status !== "complete" || !job.result_file_id) throw new ApiError(0, "job_failed", job.error ?? "failed");
  return job.result_file_id;
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

/** Numbers each upload of this page. */
let uploadCount = 0;
type Sort = "created_at:desc" | "created_at:asc" | "name:asc" | "name:desc" | "size:desc" | "size:asc";

const SORTS: [Sort, string][] = [
  ["created_at:desc", "Newest first"],
  ["created_at:asc", "Oldest first"],
  ["name:asc", "Name A–Z"],
  ["name:desc", "Name Z–A"],
  ["size:desc", "Largest first"],
  ["size:asc", "Smallest first"],
];

/** Bytes as people read them. */
function size(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** How a file is shown in the browser, if it can be: images as they
 * are, PDFs in the browser's viewer, any text as plain text. */
function previewType(file: FileItem): string | null {
  const type = file.content_type.split(";")[0].trim().toLowerCase();
  if (/^image\/(png|jpeg|gif|webp)$/.test(type) || type === "application/pdf") return type;
  return type.startsWith("text/") ? "text/plain" : null;
}

function Preview({ file, onClose }: { file: FileItem; onClose: () => void }) {
  const [url, setUrl] = useState("");
  const [error, setError] = useState("");
  useEffect(() => {
    let shown = "";
    contentUrl(file.id, previewType(file) ?? "application/octet-stream")
      .then((made) => setUrl((shown = made)))
      .catch((failure) => setError(readable(failure)));
    return () => shown && URL.revokeObjectURL(shown);
  }, [file.id]);
  return (
    <Modal labelledBy="preview-title" onClose={onClose}>
      <h2 id="preview-title">{file.file_name}</h2>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {url &&
        (file.content_type.startsWith("image/") ? (
          <img src={url} alt={file.file_name} />
        ) : (
          <iframe
            src={url}
            title={`Preview of ${file.file_name}`}
            sandbox={previewType(file) === "application/pdf" ? undefined : ""}
          />
        ))}
    </Modal>
  );
}

interface Upload {
  id: number;
  name: string;
  progress: number;
  error?: string;
  cancel: AbortController;
}

function Files({ me, onSignedOut }: { me: User; onSignedOut: () => void }) {
  const [scope, setScope] = useState<Scope>("all");
  const [query, setQuery] = useState("");
  const [files, setFiles] = useState<FileItem[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState("");
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [sharing, setSharing] = useState<FileItem | null>(null);
  const [previewing, setPreviewing] = useState<FileItem | null>(null);
  const [sort, setSort] = useState<Sort>("created_at:desc");
  const [account, setAccount] = useState(me);
  const [thumbnails, setThumbnails] = useState<Record<string, string>>({});
  // Uploads still running and blob: URLs shown, let go when this view goes.
  const running = useRef(new Set<AbortController>());
  const shown = useRef<string[]>([]);
  useEffect(
    () => () => {
      running.current.forEach((upload) => upload.abort());
      shown.current.forEach((url) => URL.revokeObjectURL(url));
    },
    [],
  );
  // Only the newest list request may fill the list.
  const latest = useRef(0);

  async function load(from: string | null) {
    const request = ++latest.current;
    const [by, order] = sort.split(":");
    const params = new URLSearchParams({ scope, limit: "50", sort: by, order });
    if (query) params.set("q", query);
    if (from) params.set("cursor", from);
    try {
      const page = await call<FilePage>("GET", `/api/files?${params}`);
      if (request !== latest.current) return;
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
  }, [scope, query, sort]);

  useEffect(() => {
    call<User>("GET", "/api/auth/me")
      .then(setAccount)
      .catch(() => undefined);
  }, [files]);

  async function showThumbnail(file: FileItem) {
    const id = await thumbnail(file);
    const url = await contentUrl(id);
    shown.current.push(url);
    setThumbnails((shown) => ({ ...shown, [file.id]: url }));
  }

  function send(chosen: FileList | null) {
    for (const file of Array.from(chosen ?? [])) {
      const id = ++uploadCount;
      const cancel = new AbortController();
      const update = (change: Partial<Upload>) =>
        setUploads((all) => all.map((u) => (u.id === id ? { ...u, ...change } : u)));
      setUploads((all) => [...all, { id, name: file.name, progress: 0, cancel }]);
      running.current.add(cancel);
      upload(file, (progress) => update({ progress }), cancel.signal)
        .then(() => {
          setUploads((all) => all.filter((u) => u.id !== id));
          void load(null);
        })
        .catch((failure) => update({ error: readable(failure) }))
        .finally(() => running.current.delete(cancel));
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
        <span>
          {account.username} · {size(account.usage)} of {size(account.quota)} used
        </span>
        <Bell refresh={files} />
        <button
          type="button"
          onClick={() =>
            call("POST", "/api/auth/logout")
              .catch(() => undefined)
              .finally(onSignedOut)
          }
        >
          Log out
        </button>
      </header>
      <nav aria-label="Which files">
        {(["all", "owned", "shared"] as Scope[]).map((each) => (
          <button key={each} type="button" aria-pressed={scope === each} onClick={() => setScope(each)}>
            {each === "all" ? "All" : each === "owned" ? "Mine" : "Shared with me"}
          </button>
        ))}
        <label class="search">
          Search
          <input type="search" value={query} onChange={(event) => setQuery(event.currentTarget.value)} />
        </label>
        <label>
          Sort
          <select value={sort} onChange={(event) => setSort(event.currentTarget.value as Sort)}>
            {SORTS.map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
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
            <li key={entry.id}>
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
              <td>
                {thumbnails[file.id] && <img src={thumbnails[file.id]} alt={`Thumbnail of ${file.file_name}`} />}
                {file.file_name}
              </td>
              <td>{size(file.size)}</td>
              <td>{file.owner.username}</td>
              <td>
                <button type="button" onClick={() => act(() => download(file))}>
                  Download
                </button>
                {previewType(file) && (
                  <button type="button" onClick={() => setPreviewing(file)}>
                    Preview
                  </button>
                )}
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
                {file.content_type.startsWith("image/") && !thumbnails[file.id] && (
                  <button type="button" onClick={() => act(() => showThumbnail(file))}>
                    Thumbnail
                  </button>
                )}
                {(file.owner.id === me.id || me.role === "admin") && (
                  <button type="button" onClick={() => setSharing(file)}>
                    Share
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
      {sharing && <ShareDialog file={sharing} onClose={() => setSharing(null)} />}
      {previewing && <Preview file={previewing} onClose={() => setPreviewing(null)} />}
    </main>
  );
}

function App() {
  const [me, setMe] = useState<User | null>(null);
  const [checked, setChecked] = useState(false);
  const signIn = () =>
    call<User>("GET", "/api/auth/me")
      .then(setMe)
      .catch((failure) => {
        // Only a rejected token signs out; an outage keeps it for later.
        if (failure instanceof ApiError && failure.status === 401) session.clear();
        setMe(null);
      })
      .finally(() => setChecked(true));
  useEffect(() => {
    if (session.token()) void signIn();
    else setChecked(true);
  }, []);
  if (!checked) return <p>Loading…</p>;
  return me ? (
    <Files me={me} onSignedOut={() => (session.clear(), setMe(null))} />
  ) : (
    <Auth onSignedIn={signIn} />
  );
}

render(<App />, document.getElementById("app")!);
