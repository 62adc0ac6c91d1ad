import { useEffect, useState } from "preact/hooks";
import { call } from "./api";
import type { FileItem, Grant, GrantList } from "./api";
import { Alert, readable } from "./errors";
import { Modal } from "./modal";

const LEVELS = ["read", "write", "delete"] as const;

const LevelOptions = () => (
  <>
    {LEVELS.map((level) => (
      <option key={level} value={level}>
        {level}
      </option>
    ))}
  </>
);

/** Who has access to a file, and the owner's controls to change that. */
export function ShareDialog({ file, onClose }: { file: FileItem; onClose: () => void }) {
  const [grants, setGrants] = useState<Grant[]>([]);
  const [error, setError] = useState("");
  const base = `/api/files/${file.id}/permissions`;

  async function reload() {
    try {
      setGrants((await call<GrantList>("GET", base)).permissions);
    } catch (failure) {
      setError(readable(failure));
    }
  }

  /** Runs a change; whether it succeeded. */
  async function act(work: () => Promise<unknown>): Promise<boolean> {
    setError("");
    let done = false;
    try {
      await work();
      done = true;
    } catch (failure) {
      setError(readable(failure));
    }
    await reload();
    return done;
  }

  useEffect(() => {
    void reload();
  }, [file.id]);

  function share(event: Event) {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    void act(() => call("POST", base, { username: data.get("username"), permission: data.get("permission") })).then(
      (done) => done && form.reset(),
    );
  }

  return (
    <Modal labelledBy="share-title" onClose={onClose}>
      <h2 id="share-title">Share “{file.file_name}”</h2>
      <form onSubmit={share}>
        <label>
          Username
          <input name="username" required autocomplete="off" />
        </label>
        <label>
          Level
          <select name="permission">
            <LevelOptions />
          </select>
        </label>
        <button type="submit">Share</button>
      </form>
      <Alert message={error} />
      <ul aria-label="Who has access">
        {grants.map((grant) => (
          <li key={grant.user.id}>
            {grant.user.username}{" "}
            {grant.is_owner ? (
              "(owner)"
            ) : (
              <>
                <label>
                  <span class="visually-hidden">Level of {grant.user.username}</span>
                  <select
                    value={grant.permission}
                    onChange={(event) =>
                      act(() => call("PATCH", `${base}/${grant.user.id}`, { permission: event.currentTarget.value }))
                    }
                  >
                    <LevelOptions />
                  </select>
                </label>
                <button type="button" onClick={() => act(() => call("DELETE", `${base}/${grant.user.id}`))}>
                  Revoke {grant.user.username}
                </button>
              </>
            )}
          </li>
        ))}
      </ul>
    </Modal>
  );
}
