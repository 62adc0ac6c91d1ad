import { useEffect, useState } from "preact/hooks";
import { call } from "./api";
import type { Notification, NotificationPage } from "./api";
import { Alert, readable } from "./errors";

/** The bell: the unread count, and the feed when opened. */
export function Bell({ refresh }: { refresh: unknown }) {
  const [open, setOpen] = useState(false);
  const [unread, setUnread] = useState(0);
  const [feed, setFeed] = useState<Notification[]>([]);
  const [error, setError] = useState("");

  async function reload() {
    try {
      const page = await call<NotificationPage>("GET", "/api/notifications?limit=20");
      setUnread(page.unread_count);
      setFeed(page.notifications);
      setError("");
    } catch (failure) {
      setError(readable(failure));
    }
  }

  useEffect(() => {
    void reload();
    // Polled only while someone looks at the page.
    const timer = setInterval(() => document.visibilityState === "visible" && reload(), 15_000);
    return () => clearInterval(timer);
  }, [refresh]);

  return (
    <div class="bell">
      <button type="button" aria-expanded={open} onClick={() => setOpen(!open)}>
        Notifications <span class="count">{unread}</span>
        <span class="visually-hidden"> unread</span>
      </button>
      {open && (
        <section class="feed" aria-label="Notifications">
          <Alert message={error} />
          {feed.length === 0 && <p>Nothing yet.</p>}
          <ul>
            {feed.map((notification) => (
              <li key={notification.id} class={notification.read ? "" : "unread"}>
                {notification.message}
              </li>
            ))}
          </ul>
          <button
            type="button"
            onClick={() =>
              call("POST", "/api/notifications/read-all")
                .then(reload)
                .catch((failure) => setError(readable(failure)))
            }
          >
            Mark all read
          </button>
        </section>
      )}
    </div>
  );
}
