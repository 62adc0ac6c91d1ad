import { useEffect, useRef, useState } from "preact/hooks";
import { call } from "./api";
import type { AdminChange, User, UserPage } from "./api";
import { Alert, readable } from "./errors";
import { size } from "./format";
import { Table } from "./table";

const MB = 1_000_000;

/** One account's row: role, disabled, quota, delete; each change saved at once. */
function UserRow({
  user,
  isMe,
  onChanged,
  onDeleted,
  onError,
}: {
  user: User;
  isMe: boolean;
  onChanged: (user: User) => void;
  onDeleted: () => void;
  onError: (message: string) => void;
}) {
  const [quota, setQuota] = useState(user.quota_is_default ? "" : String(user.quota / MB));

  async function change(body: AdminChange) {
    try {
      onChanged(await call<User>("PATCH", `/api/admin/users/${user.id}`, body));
      onError("");
    } catch (failure) {
      onError(readable(failure));
    }
  }

  function saveQuota(event: Event) {
    event.preventDefault();
    const megabytes = quota.trim();
    void change({ quota_bytes: megabytes === "" ? null : Math.round(Number(megabytes) * MB) });
  }

  return (
    <tr>
      <td>
        {user.username}
        {isMe && " (you)"}
        <div class="muted">{user.email}</div>
      </td>
      <td>
        {size(user.usage)} of {size(user.quota)}
        {user.quota_is_default && " (default)"}
      </td>
      <td>
        <label>
          <span class="visually-hidden">Role of {user.username}</span>
          <select
            value={user.role}
            onChange={(event) => change({ role: event.currentTarget.value as User["role"] })}
          >
            <option value="viewer">viewer</option>
            <option value="admin">admin</option>
          </select>
        </label>
      </td>
      <td>
        <label class="inline">
          <input
            type="checkbox"
            checked={user.disabled}
            onChange={(event) => change({ disabled: event.currentTarget.checked })}
          />
          <span class="visually-hidden">{user.username} is </span>disabled
        </label>
      </td>
      <td>
        <form class="quota" onSubmit={saveQuota}>
          <label>
            <span class="visually-hidden">Quota of {user.username} in MB (blank: the default)</span>
            <input
              type="number"
              min={0}
              step="any"
              placeholder="default"
              value={quota}
              onInput={(event) => setQuota(event.currentTarget.value)}
            />
          </label>
          <button type="submit">
            Set<span class="visually-hidden"> the quota of {user.username}</span>
          </button>
        </form>
      </td>
      <td>
        <button
          type="button"
          onClick={() => {
            if (!confirm(`Delete ${user.username} and every file they own?`)) return;
            call("DELETE", `/api/admin/users/${user.id}`)
              .then(onDeleted)
              .catch((failure) => onError(readable(failure)));
          }}
        >
          Delete<span class="visually-hidden"> {user.username}</span>
        </button>
      </td>
    </tr>
  );
}

/** The admins' page: every account, paged by id. */
export function Users({ me }: { me: User }) {
  const [users, setUsers] = useState<User[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState("");
  // One page at a time: a second click while one loads adds nothing.
  const loading = useRef(false);

  async function load(from: string | null) {
    if (loading.current) return;
    loading.current = true;
    try {
      const page = await call<UserPage>("GET", `/api/admin/users?limit=50${from ? `&cursor=${encodeURIComponent(from)}` : ""}`);
      setUsers((shown) => (from ? [...shown, ...page.users] : page.users));
      setCursor(page.next_cursor);
    } catch (failure) {
      setError(readable(failure));
    } finally {
      loading.current = false;
    }
  }

  useEffect(() => {
    void load(null);
  }, []);

  return (
    <section aria-labelledby="users-title">
      <h2 id="users-title">Users</h2>
      <Alert message={error} />
      <Table caption="Accounts" columns={["User", "Storage", "Role", "Access", "Quota", "Actions"]}>
        {users.map((user) => (
          <UserRow
            key={user.id}
            user={user}
            isMe={user.id === me.id}
            onChanged={(changed) => setUsers((all) => all.map((each) => (each.id === changed.id ? changed : each)))}
            onDeleted={() => setUsers((all) => all.filter((each) => each.id !== user.id))}
            onError={setError}
          />
        ))}
      </Table>
      {cursor && (
        <button type="button" onClick={() => load(cursor)}>
          Load more
        </button>
      )}
    </section>
  );
}
