//! How hard guessing passwords and mass registration are made, decided once
//! (OWASP ASVS 5.0, V6 authentication / anti-automation): throttle first
//! by (account, client), then by client; an account-wide count only slows
//! down the clients that have already failed on that account, so an
//! attacker cannot lock the owner out, and a correct password from a client
//! that has not failed is always let through.
//!
//! Every figure is over a sliding window of [`WINDOW_SECONDS`].
//!
//! | what | limit | then |
//! |---|---|---|
//! | failures of one client on one account | 10 | 429 until the oldest leaves the window |
//! | failures of one client, all accounts | 100 | 429 until the oldest leaves the window |
//! | failures on one account, all clients | from 10 | clients that failed on it wait 2^(n-10) s (at most 15 min) after the account's last failure |
//! | registrations of one client | 20 | 429 until the oldest leaves the window |

/// The sliding window every count covers.
pub const WINDOW_SECONDS: i64 = 15 * 60;
/// Failures of one client on one account.
pub const PAIR_LIMIT: i64 = 10;
/// Failures of one client over all accounts (password spraying).
pub const CLIENT_LIMIT: i64 = 100;
/// Failures on one account over all clients from which failed clients are slowed.
pub const ACCOUNT_SLOWDOWN_FROM: i64 = 10;
/// The longest account-wide delay.
pub const MAX_DELAY_SECONDS: i64 = WINDOW_SECONDS;
/// Registrations of one client.
pub const REGISTRATION_LIMIT: i64 = 20;

/// What the database holds about recent failed logins, for one attempt.
/// Ages are whole seconds before now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoginFailures {
    /// This client's failures on this account.
    pub pair: i64,
    pub pair_oldest_age: i64,
    /// This client's failures on any account.
    pub client: i64,
    pub client_oldest_age: i64,
    /// Failures on this account from any client.
    pub account: i64,
    pub account_latest_age: i64,
}

/// Seconds to wait once `count` events inside the window reached `limit`.
fn window_wait(count: i64, limit: i64, oldest_age: i64) -> Option<u64> {
    (count >= limit).then(|| (WINDOW_SECONDS - oldest_age).max(1) as u64)
}

/// `Some(seconds)` when this login attempt must be refused with 429.
pub fn login_wait(failures: &LoginFailures) -> Option<u64> {
    let pair = window_wait(failures.pair, PAIR_LIMIT, failures.pair_oldest_age);
    let client = window_wait(failures.client, CLIENT_LIMIT, failures.client_oldest_age);
    let account = (failures.pair > 0 && failures.account >= ACCOUNT_SLOWDOWN_FROM)
        .then(|| {
            let doublings = (failures.account - ACCOUNT_SLOWDOWN_FROM).min(20) as u32;
            let delay = (1i64 << doublings).min(MAX_DELAY_SECONDS);
            delay - failures.account_latest_age
        })
        .filter(|wait| *wait > 0)
        .map(|wait| wait as u64);
    [pair, client, account].into_iter().flatten().max()
}

/// `Some(seconds)` when a client already registered `count` accounts in the
/// window, the oldest `oldest_age` seconds ago.
pub fn registration_wait(count: i64, oldest_age: i64) -> Option<u64> {
    window_wait(count, REGISTRATION_LIMIT, oldest_age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_refused_on_an_account_after_its_own_failures() {
        let mut seen = LoginFailures {
            pair: PAIR_LIMIT - 1,
            pair_oldest_age: 100,
            client: PAIR_LIMIT - 1,
            client_oldest_age: 100,
            account: 0,
            account_latest_age: 0,
        };
        seen.account = seen.pair.min(ACCOUNT_SLOWDOWN_FROM - 1);
        assert_eq!(login_wait(&seen), None);
        seen.pair += 1;
        assert_eq!(login_wait(&seen), Some((WINDOW_SECONDS - 100) as u64));
    }

    #[test]
    fn a_clean_client_is_never_slowed_by_others_failures() {
        let attacked = LoginFailures {
            account: 10_000,
            account_latest_age: 0,
            ..LoginFailures::default()
        };
        assert_eq!(login_wait(&attacked), None);
    }

    #[test]
    fn failed_clients_wait_longer_as_the_account_is_attacked() {
        let at = |account, latest| LoginFailures {
            pair: 1,
            pair_oldest_age: 5,
            client: 1,
            client_oldest_age: 5,
            account,
            account_latest_age: latest,
        };
        assert_eq!(login_wait(&at(ACCOUNT_SLOWDOWN_FROM - 1, 0)), None);
        assert_eq!(login_wait(&at(ACCOUNT_SLOWDOWN_FROM, 0)), Some(1));
        assert_eq!(login_wait(&at(ACCOUNT_SLOWDOWN_FROM + 3, 0)), Some(8));
        assert_eq!(login_wait(&at(ACCOUNT_SLOWDOWN_FROM + 3, 8)), None);
        assert_eq!(
            login_wait(&at(ACCOUNT_SLOWDOWN_FROM + 60, 0)),
            Some(MAX_DELAY_SECONDS as u64)
        );
    }

    #[test]
    fn spraying_from_one_client_is_refused_across_accounts() {
        let spray = LoginFailures {
            client: CLIENT_LIMIT,
            client_oldest_age: WINDOW_SECONDS - 30,
            ..LoginFailures::default()
        };
        assert_eq!(login_wait(&spray), Some(30));
    }

    #[test]
    fn registrations_are_limited_per_client() {
        assert_eq!(registration_wait(REGISTRATION_LIMIT - 1, 10), None);
        assert_eq!(
            registration_wait(REGISTRATION_LIMIT, 10),
            Some((WINDOW_SECONDS - 10) as u64)
        );
    }
}
