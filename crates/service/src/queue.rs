//! Redis channels that wake background components (the transformation
//! worker, the webhook deliverer). A message is only a wake-up: the rows
//! in Postgres are the truth, so a lost message delays work until the
//! next one (or the scheduled tick) and a duplicate finds nothing to do.

use crate::config::get;
use crate::db::Db;
use crate::error::ApiError;

/// Where Redis is, from the `redis_*` variables.
#[derive(Clone)]
pub struct RedisAddress {
    host: String,
    port: String,
    password: String,
}

/// Everything but the password.
impl std::fmt::Debug for RedisAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAddress")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl RedisAddress {
    pub async fn load() -> Result<Self, ApiError> {
        Ok(RedisAddress {
            host: get("redis_host").await?,
            port: get("redis_port").await?,
            password: get("redis_password").await?,
        })
    }

    /// `redis://:<password>@host:port`, the password percent-encoded.
    pub fn url(&self) -> Result<String, ApiError> {
        let mut url = url::Url::parse(&format!("redis://{}:{}", self.host, self.port))
            .map_err(|e| ApiError::internal(format!("variables redis_host/redis_port: {e}")))?;
        if !self.password.is_empty() {
            url.set_password(Some(&self.password))
                .map_err(|()| ApiError::internal("variable redis_password cannot be put in a URL"))?;
        }
        Ok(url.into())
    }
}

/// An open connection to one wake-up channel.
pub struct Queue {
    connection: spin_sdk::redis::Connection,
    channel: String,
}

impl Queue {
    /// Opens the channel; `None` (logged) when Redis is unreachable.
    pub async fn open(redis: &RedisAddress, channel: &str) -> Option<Self> {
        let opened = match redis.url() {
            Ok(url) => spin_sdk::redis::Connection::open(url)
                .await
                .map_err(|e| format!("{e:?}")),
            Err(error) => Err(format!("{error:?}")),
        };
        match opened {
            Ok(connection) => Some(Queue {
                connection,
                channel: channel.to_owned(),
            }),
            Err(error) => {
                eprintln!("channel {channel}: Redis is unreachable: {error}");
                None
            }
        }
    }

    /// Publishes `message`; a failure is logged, never the caller's.
    pub async fn announce(&self, message: &[u8]) {
        if let Err(error) = self.connection.publish(&self.channel, message).await {
            eprintln!("channel {}: wake-up not published: {error:?}", self.channel);
        }
    }
}

/// Wakes the webhook deliverer if `db` wrote a notification that waits for
/// it. The connection is returned to the pool first: no database
/// connection is held while Redis is reached.
pub async fn announce_deliveries(db: Db) {
    if !db.deliveries_due() {
        return;
    }
    drop(db);
    let (redis, channel) = match (RedisAddress::load().await, get("notify_channel").await) {
        (Ok(redis), Ok(channel)) => (redis, channel),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("the webhook deliverer cannot be woken: {error:?}");
            return;
        }
    };
    if let Some(queue) = Queue::open(&redis, &channel).await {
        queue.announce(b"deliver").await;
    }
}
