import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, call, contentUrl, download, replace, upload } from "./api";
import type { FileItem, FilePage, User } from "./api";
import { Alert, readable } from "./errors";
import { mediaType, size } from "./format";
import { kindsFor, TransformDialog } from "./jobs";
import { Modal } from "./modal";
import { ShareDialog } from "./share";
import { useThumbnails } from "./thumbnails";
import { Table } from "./table";

type Scope = "owned" | "shared" | "all";
type Sort = "created_at:desc" | "created_at:asc" | "name:asc" | "name:desc" | "size:desc" | "size:asc";

const SORTS: [Sort, string][] = [
  ["created_at:desc", "Newest first"],
  ["created_at:asc", "Oldest first"],
  ["name:asc", "Name A–Z"],
  ["name:desc", "Name Z–A"],
  ["size:desc", "Largest first"],
  ["size:asc", "Smallest first"],
];
/** Numbers each transfer of this page. */
let transferCount = 0;

/** Runs at most `size` tasks at once, the others in turn: a browser has
 * six connections to a host, and the list and the bell need some. */
function slots(size: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T,>(task: () => Promise<T>): Promise<T> => {
    if (active >= size) await new Promise<void>((start) => waiting.push(start));
    active += 1;
    try {
      return await task();
    } finally {
      active -= 1;
      waiting.shift()?.();
    }
  };
}
const transferSlots = slots(3);

/** How a file is shown in the browser, if it can be: images as they
 * are, PDFs in the browser's viewer, any text as plain UTF-8 text. */
function previewType(file: FileItem): string | null {
  const type = mediaType(file);
  if (/^image\/(png|jpeg|gif|webp)$/.test(type) || type === "application/pdf") return type;
  return type.startsWith("text/") ? "text/plain;charset=utf-8" : null;
}

function Preview({ file, onClose }: { file: FileItem; onClose: () => void }) {
  const [url, setUrl] = useState("");
  const [error, setError] = useState("");
  const type = previewType(file) ?? "application/octet-stream";
  useEffect(() => {
    let shown = "";
    let closed = false;
    contentUrl(file.id, type)
      .then((made) => (closed ? URL.revokeObjectURL(made) : setUrl((shown = made))))
      .catch((failure) => setError(readable(failure)));
    return () => {
      closed = true;
      if (shown) URL.revokeObjectURL(shown);
    };
  }, [file.id]);
  return (
    <Modal labelledBy="preview-title" onClose={onClose}>
      <h2 id="preview-title">{file.file_name}</h2>
      <Alert message={error} />
      {url && (
        <div class="preview">
          {type.startsWith("image/") ? (
            <img src={url} alt={file.file_name} />
          ) : (
            <iframe src={url} title={`Preview of ${file.file_name}`} sandbox={type === "application/pdf" ? undefined : ""} />
          )}
        </div>
      )}
    </Modal>
  );
}

function RenameDialog({ file, onDone, onClose }: { file: FileItem; onDone: () => void; onClose: () => void }) {
  const [error, setError] = useState("");
  async function rename(event: Event) {
    event.preventDefault();
    const name = String(new FormData(event.currentTarget as HTMLFormElement).get("name"));
    try {
      await call("PATCH", `/api/files/${file.id}`, { file_name: name });
      onDone();
    } catch (failure) {
      setError(readable(failure));
    }
  }
  return (
    <Modal labelledBy="rename-title" onClose={onClose}>
      <h2 id="rename-title">Rename “{file.file_name}”</h2>
      <form onSubmit={rename}>
        <label>
          New name
          <input name="name" required maxLength={255} defaultValue={file.file_name} />
        </label>
        <button type="submit">Save</button>
      </form>
      <Alert message={error} />
    </Modal>
  );
}

interface Transfer {
  id: number;
  name: string;
  progress: number;
  error?: string;
  cancel: AbortController;
}

type Dialog =
  | { kind: "share" | "preview" | "rename" | "transform"; file: FileItem }
  | { kind: "none" };

/** The file list: scope, search, sort, paging; uploads and every action on a file. */
export function Files({ me, onChanged, onSignedOut }: { me: User; onChanged: () => void; onSignedOut: () => void }) {
  const [scope, setScope] = useState<Scope>("all");
  // What is typed in the search box; searched once typing pauses.
  const [typed, setTyped] = useState("");
  const [query, setQuery] = useState("");
  const [inContent, setInContent] = useState(false);
  // Bumped to list the first page again (after a change).
  const [version, setVersion] = useState(0);
  const refresh = () => setVersion((n) => n + 1);
  const [files, setFiles] = useState<FileItem[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState("");
  const [transfers, setTransfers] = useState<Transfer[]>([]);
  const [dialog, setDialog] = useState<Dialog>({ kind: "none" });
  const [sort, setSort] = useState<Sort>("created_at:desc");
  // Searching the text is ordered by relevance, which needs words.
  const searchesContent = inContent && query !== "";
  const thumbnails = useThumbnails(files);
  const replacing = useRef<FileItem | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const replacePicker = useRef<HTMLInputElement>(null);
  // Transfers still running, stopped when this view goes.
  const running = useRef(new Set<AbortController>());
  useEffect(() => () => running.current.forEach((transfer) => transfer.abort()), []);
  // Only the newest list request may fill the list.
  const latest = useRef(0);

  async function load(from: string | null) {
    const request = ++latest.current;
    const [by, order] = searchesContent ? ["relevance", "desc"] : sort.split(":");
    const params = new URLSearchParams({ scope, limit: "50", sort: by, order });
    if (query) params.set("q", query);
    if (searchesContent) params.set("content", "true");
    if (from) params.set("cursor", from);
    try {
      const page = await call<FilePage>("GET", `/api/files?${params}`);
      if (request !== latest.current) return;
      setFiles((shown) => (from ? [...shown, ...page.files] : page.files));
      setCursor(page.next_cursor ?? null);
      setError("");
    } catch (failure) {
      if (request !== latest.current) return;
      if (failure instanceof ApiError && failure.status === 401) return onSignedOut();
      setError(readable(failure));
    }
  }

  useEffect(() => {
    const pause = setTimeout(() => setQuery(typed.trim()), 300);
    return () => clearTimeout(pause);
  }, [typed]);

  useEffect(() => {
    void load(null);
  }, [scope, query, sort, searchesContent, version]);

  /** Runs one transfer with progress and cancel, then reloads the list. */
  function transfer(name: string, send: (onProgress: (p: number) => void, signal: AbortSignal) => Promise<unknown>) {
    const id = ++transferCount;
    const cancel = new AbortController();
    const update = (change: Partial<Transfer>) =>
      setTransfers((all) => all.map((t) => (t.id === id ? { ...t, ...change } : t)));
    setTransfers((all) => [...all, { id, name, progress: 0, cancel }]);
    running.current.add(cancel);
    transferSlots(() => send((progress) => update({ progress }), cancel.signal))
      .then(() => {
        setTransfers((all) => all.filter((t) => t.id !== id));
        onChanged();
        refresh();
      })
      // The list again either way: a replace refused with 412 shows why.
      .catch((failure) => (update({ error: readable(failure) }), refresh()))
      .finally(() => running.current.delete(cancel));
  }

  const dismiss = (id: number) => setTransfers((all) => all.filter((t) => t.id !== id));

  function send(chosen: FileList | null) {
    for (const file of Array.from(chosen ?? [])) {
      transfer(file.name, (onProgress, signal) => upload(file, onProgress, signal));
    }
  }

  function replaceWith(chosen: FileList | null) {
    const target = replacing.current;
    const file = chosen?.[0];
    if (!target || !file) return;
    transfer(`${target.file_name} (replacing)`, (onProgress, signal) => replace(target, file, onProgress, signal));
  }

  /** A change to the files: the list and the usage follow it. */
  async function change(work: () => Promise<unknown>) {
    try {
      await work();
      onChanged();
      refresh();
    } catch (failure) {
      setError(readable(failure));
    }
  }


  async function openResult(fileId: string) {
    try {
      setDialog({ kind: "preview", file: await call<FileItem>("GET", `/api/files/${fileId}`) });
    } catch (failure) {
      setError(readable(failure));
    }
  }

  const close = () => setDialog({ kind: "none" });
  return (
    <section
      class="files"
      aria-labelledby="files-title"
      onDragOver={(event) => event.preventDefault()}
      onDrop={(event) => {
        event.preventDefault();
        send(event.dataTransfer?.files ?? null);
      }}
    >
      <h2 id="files-title" class="visually-hidden" ref={heading} tabIndex={-1}>
        Files
      </h2>
      <nav aria-label="Which files">
        {(["all", "owned", "shared"] as Scope[]).map((each) => (
          <button key={each} type="button" aria-pressed={scope === each} onClick={() => setScope(each)}>
            {each === "all" ? "All" : each === "owned" ? "Mine" : "Shared with me"}
          </button>
        ))}
        <label class="search">
          Search
          <input type="search" value={typed} onInput={(event) => setTyped(event.currentTarget.value)} />
        </label>
        <label class="inline">
          <input type="checkbox" checked={inContent} onChange={(event) => setInContent(event.currentTarget.checked)} />
          Search inside files
        </label>
        <label>
          Sort
          {searchesContent ? (
            <select disabled>
              <option>Best match</option>
            </select>
          ) : (
            <select value={sort} onChange={(event) => setSort(event.currentTarget.value as Sort)}>
              {SORTS.map(([value, label]) => (
                <option key={value} value={value}>
                  {label}
                </option>
              ))}
            </select>
          )}
        </label>
        <label class="upload">
          Upload files
          <input
            type="file"
            multiple
            onChange={(event) => {
              send(event.currentTarget.files);
              // The same file may be picked again (after a cancel).
              event.currentTarget.value = "";
            }}
          />
        </label>
        <input
          ref={replacePicker}
          type="file"
          hidden
          aria-hidden="true"
          tabIndex={-1}
          onChange={(event) => {
            replaceWith(event.currentTarget.files);
            event.currentTarget.value = "";
          }}
        />
      </nav>
      <Alert message={error} />
      {transfers.length > 0 && (
        <ul class="uploads" aria-label="Uploads" aria-live="polite">
          {transfers.map((entry) => (
            <li key={entry.id}>
              {entry.name}{" "}
              {entry.error ? (
                <>
                  <span class="error">{entry.error}</span>{" "}
                  <button type="button" onClick={() => dismiss(entry.id)}>
                    Dismiss
                  </button>
                </>
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
      <Table caption="Files" columns={["Name", "Size", "Owner", "Actions"]}>
        {files.map((file) => (
          <tr key={file.id}>
            <td>
              {thumbnails.urls[file.id] && (
                <img src={thumbnails.urls[file.id]} alt="" />
              )}
              {file.file_name}
            </td>
            <td>{size(file.size)}</td>
            <td>{file.owner.username}</td>
            <td>
              <div class="actions">
                <button type="button" onClick={() => download(file).catch((failure) => setError(readable(failure)))}>
                  Download
                </button>
                {previewType(file) && (
                  <button type="button" onClick={() => setDialog({ kind: "preview", file })}>
                    Preview
                  </button>
                )}
                {file.my_permission !== "read" && (
                  <>
                    <button type="button" onClick={() => setDialog({ kind: "rename", file })}>
                      Rename
                    </button>
                    <button
                      type="button"
                      onClick={() => {
                        replacing.current = file;
                        replacePicker.current?.click();
                      }}
                    >
                      Replace
                    </button>
                  </>
                )}
                {kindsFor(file).length > 0 && (
                  <button type="button" onClick={() => setDialog({ kind: "transform", file })}>
                    Transform
                  </button>
                )}
                {(file.owner.id === me.id || me.role === "admin") && (
                  <button type="button" onClick={() => setDialog({ kind: "share", file })}>
                    Share
                  </button>
                )}
                {file.my_permission === "delete" && (
                  <button
                    type="button"
                    onClick={() => {
                      if (!confirm(`Delete “${file.file_name}”?`)) return;
                        // The row goes: the focus goes to the list's heading.
                        heading.current?.focus();
                        void change(() => call("DELETE", `/api/files/${file.id}`));
                    }}
                  >
                    Delete
                  </button>
                )}
              </div>
            </td>
          </tr>
        ))}
      </Table>
      {files.length === 0 && !error && (
        <p>
          {query
            ? "Nothing matches."
            : scope === "shared"
              ? "Nothing is shared with you yet."
              : "No files here yet: drop some on this page or use Upload."}
        </p>
      )}
      {cursor && (
        <button type="button" onClick={() => load(cursor)}>
          Load more
        </button>
      )}
      {dialog.kind === "share" && <ShareDialog file={dialog.file} onClose={close} />}
      {dialog.kind === "preview" && <Preview file={dialog.file} onClose={close} />}
      {dialog.kind === "rename" && (
        <RenameDialog file={dialog.file} onClose={close} onDone={() => (close(), onChanged(), refresh())} />
      )}
      {dialog.kind === "transform" && (
        <TransformDialog
          file={dialog.file}
          onThumbnail={thumbnails.add}
          onMade={() => (onChanged(), refresh())}
          onOpen={openResult}
          onClose={close}
        />
      )}
    </section>
  );
}
