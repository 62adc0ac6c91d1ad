import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, call, session } from "./api";
import type { User } from "./api";
import { Users } from "./admin";
import { Auth } from "./auth";
import { readable } from "./errors";
import { Files } from "./files";
import { size } from "./format";
import { Bell } from "./notifications";
import "./styles.css";

/** The pages, by path: the web component answers both with index.html. */
const PAGES = { files: "/", users: "/admin/users" } as const;

/** Where the browser is, kept in step with back and forward. */
function usePath(): [string, (path: string) => void] {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const follow = () => setPath(location.pathname);
    addEventListener("popstate", follow);
    return () => removeEventListener("popstate", follow);
  }, []);
  return [
    path,
    (to: string) => {
      history.pushState(null, "", to);
      setPath(to);
    },
  ];
}

/** The signed-in frame: the account, the pages, the bell, log out;
 * `changes` counts what this page changed, which the usage and the bell follow. */
function Shell({ me, onSignedOut }: { me: User; onSignedOut: () => void }) {
  const [account, setAccount] = useState(me);
  const [changes, setChanges] = useState(0);
  const [path, go] = usePath();
  const onUsers = path === PAGES.users && me.role === "admin";

  // The account's usage after each change (the first is `me`).
  useEffect(() => {
    if (changes === 0) return;
    call<User>("GET", "/api/auth/me")
      .then(setAccount)
      .catch(() => undefined);
  }, [changes]);

  const link = (to: string, label: string, current: boolean) => (
    <a
      href={to}
      aria-current={current ? "page" : undefined}
      onClick={(event) => {
        event.preventDefault();
        go(to);
      }}
    >
      {label}
    </a>
  );
  return (
    <main>
      <header>
        <h1>spindrive</h1>
        <nav aria-label="Pages" class="pages">
          {link(PAGES.files, "Files", !onUsers)}
          {me.role === "admin" && link(PAGES.users, "Users", onUsers)}
        </nav>
        <span>
          {account.username} · {size(account.usage)} of {size(account.quota)} used
        </span>
        <Bell refresh={changes} />
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
      {onUsers ? (
        <Users me={me} />
      ) : (
        <Files me={me} onChanged={() => setChanges((n) => n + 1)} onSignedOut={onSignedOut} />
      )}
    </main>
  );
}

function App() {
  const [me, setMe] = useState<User | null>(null);
  const [checked, setChecked] = useState(false);
  const [problem, setProblem] = useState("");
  const signIn = () =>
    call<User>("GET", "/api/auth/me")
      .then((user) => (setMe(user), setProblem("")))
      .catch((failure) => {
        // Only a rejected token signs out; an outage keeps it for later.
        if (failure instanceof ApiError && failure.status === 401) session.clear();
        else setProblem(readable(failure));
        setMe(null);
      })
      .finally(() => setChecked(true));
  useEffect(() => {
    if (session.token()) void signIn();
    else setChecked(true);
  }, []);
  if (!checked) return <p>Loading…</p>;
  return me ? (
    <Shell me={me} onSignedOut={() => (session.clear(), setMe(null))} />
  ) : (
    <Auth onSignedIn={signIn} problem={problem} />
  );
}

render(<App />, document.getElementById("app")!);
