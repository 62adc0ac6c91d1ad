//! What a guest's statements did to its connection's session, so giving
//! the connection back costs a server round trip only when needed.
//!
//! Each call carries exactly one statement (Spin uses the extended query
//! protocol), so transaction state follows from the statements: `BEGIN` or
//! `START TRANSACTION` opens one; `COMMIT`, `END`, `ROLLBACK` and `ABORT`
//! end it (a failed `COMMIT` ends it too), except `ROLLBACK TO` and
//! `... AND CHAIN`. Session state that would outlive the request (settings,
//! temporary objects, cursors, prepared statements, advisory locks,
//! listeners) is recognised conservatively: a false alarm only costs a
//! reset.

/// The session's state as far as the statements run on it tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionState {
    pub in_transaction: bool,
    pub needs_reset: bool,
}

impl SessionState {
    /// Accounts for one statement the guest runs (then [`Self::failed`]
    /// if it fails).
    pub fn observe(&mut self, statement: &str) {
        let text = strip_leading_comments(statement).to_ascii_lowercase();
        let (first, second) = leading_words(&text);
        let chains = text.contains("and chain") && !text.contains("and no chain");
        match first {
            "begin" | "start" => self.in_transaction = true,
            "commit" | "end" | "abort" if !chains => self.in_transaction = false,
            "rollback" if second != "to" && !chains => self.in_transaction = false,
            "prepare" if second == "transaction" => self.in_transaction = false,
            _ => {}
        }
        let session_command = matches!(
            first,
            "set" | "reset" | "listen" | "declare" | "prepare" | "load" | "discard" | "lock"
        ) && !(first == "prepare" && second == "transaction");
        let creates_temporary =
            first == "create" && (text.contains(" temp ") || text.contains(" temporary "));
        let session_function = text.contains("set_config") || text.contains("advisory_lock");
        if session_command || creates_temporary || session_function {
            self.needs_reset = true;
        }
    }

    /// The statement observed last failed, `before` being the state ahead
    /// of it. A failed `BEGIN` opened nothing (in a lost connection, or an
    /// aborted transaction that was already open); every other statement
    /// leaves what `observe` said (a failed `COMMIT` ends the transaction
    /// too).
    pub fn failed(&mut self, statement: &str, before: SessionState) {
        let text = strip_leading_comments(statement).to_ascii_lowercase();
        if matches!(leading_words(&text).0, "begin" | "start") {
            self.in_transaction = before.in_transaction;
        }
    }

    /// Whether giving the connection back needs no work at all.
    pub fn is_clean(&self) -> bool {
        !self.in_transaction && !self.needs_reset
    }
}

/// The first two words of a lowercased statement.
fn leading_words(text: &str) -> (&str, &str) {
    let mut words = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty());
    (words.next().unwrap_or_default(), words.next().unwrap_or_default())
}

fn strip_leading_comments(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix("--") {
            text = rest.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(rest) = text.strip_prefix("/*") {
            text = rest.split_once("*/").map_or("", |(_, after)| after);
        } else {
            return text;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(statements: &[&str]) -> SessionState {
        let mut state = SessionState::default();
        for statement in statements {
            state.observe(statement);
        }
        state
    }

    #[test]
    fn plain_queries_leave_the_session_clean() {
        let state = after(&[
            "SELECT 1",
            "INSERT INTO t VALUES ($1)",
            "UPDATE t SET v = 1",
            "DELETE FROM t",
        ]);
        assert!(state.is_clean());
    }

    #[test]
    fn transactions_open_and_close() {
        assert!(after(&["BEGIN"]).in_transaction);
        assert!(after(&["  begin isolation level serializable"]).in_transaction);
        assert!(after(&["START TRANSACTION"]).in_transaction);
        for end in ["COMMIT", "end", "ROLLBACK", "abort", "commit work"] {
            assert!(after(&["BEGIN", "SELECT 1", end]).is_clean(), "{end}");
        }
        assert!(after(&["BEGIN", "ROLLBACK TO SAVEPOINT a"]).in_transaction);
        assert!(after(&["BEGIN", "COMMIT AND CHAIN"]).in_transaction);
        assert!(!after(&["BEGIN", "COMMIT AND NO CHAIN"]).in_transaction);
        assert!(after(&["/* why */ -- note\n BEGIN"]).in_transaction);
    }

    #[test]
    fn a_failed_begin_opens_nothing_and_closes_nothing() {
        let mut state = SessionState::default();
        state.observe("BEGIN");
        state.failed("BEGIN", SessionState::default());
        assert!(state.is_clean(), "the server refused it: no transaction");
        // Inside an aborted transaction, BEGIN fails too: still open.
        let open = after(&["BEGIN", "SELECT 1/0"]);
        let mut state = open;
        state.observe("begin");
        state.failed("begin", open);
        assert!(state.in_transaction);
        // Other failures change nothing observe said.
        let mut state = open;
        state.observe("COMMIT");
        state.failed("COMMIT", open);
        assert!(state.is_clean(), "a failed COMMIT ends the transaction");
    }

    #[test]
    fn session_state_is_recognised() {
        for statement in [
            "SET search_path TO x",
            "reset all",
            "LISTEN events",
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "PREPARE p AS SELECT 1",
            "CREATE TEMP TABLE t (v int)",
            "create temporary table t (v int)",
            "SELECT set_config('search_path', 'x', false)",
            "SELECT pg_advisory_lock(1)",
        ] {
            assert!(after(&[statement]).needs_reset, "{statement}");
        }
        assert!(!after(&["PREPARE TRANSACTION 'x'"]).needs_reset);
    }
}
