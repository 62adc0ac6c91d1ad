//! Who is calling: the bearer token resolved to a user with one indexed
//! query. Expired, revoked or unknown tokens and disabled users get 401.

use crate::db::{Db, column};
use crate::error::ApiError;
use crate::request::Ctx;
use spin_sdk::pg::ParameterValue;
use spindrive_domain::account::Role;
use spindrive_domain::token;

/// An authenticated caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub id: i64,
    pub role: Role,
}

impl Caller {
    pub fn is_admin(self) -> bool {
        self.role == Role::Admin
    }

    /// 403 unless an administrator.
    pub fn require_admin(self) -> Result<Self, ApiError> {
        if self.is_admin() {
            Ok(self)
        } else {
            Err(ApiError::forbidden("administrators only"))
        }
    }
}

/// The SHA-256 of the request's bearer token, if it has a well-formed one.
pub fn token_hash(ctx: &Ctx) -> Option<[u8; 32]> {
    let header = ctx.header("authorization")?;
    token::from_authorization(header).map(token::hash)
}

/// What follows `SELECT <users columns> FROM` to reach the account behind
/// a live session: token hash `$1`, not expired, account enabled. Every
/// lookup of a caller's account uses it, so the rule lives here once.
pub const SESSION_ACCOUNT: &str = "users WHERE NOT disabled AND id = \
     (SELECT user_id FROM sessions WHERE token_hash = $1 AND expires_at > (now() AT TIME ZONE 'utc'))";

/// Resolves the caller, or 401 (once per request: the router has done it
/// for every route behind a token).
pub async fn authenticate(ctx: &Ctx, db: &Db) -> Result<Caller, ApiError> {
    match ctx.caller {
        Some(caller) => Ok(caller),
        None => look_up(ctx, db).await,
    }
}

/// Resolves the caller before the handler runs, so that a request whose
/// token opens no session is 401 whatever else is wrong with it; the
/// connection goes back to the pool at once.
pub(crate) async fn identify(ctx: &mut Ctx) -> Result<(), ApiError> {
    let db = Db::open(&ctx.config, ctx.reads).await?;
    ctx.caller = Some(look_up(ctx, &db).await?);
    Ok(())
}

async fn look_up(ctx: &Ctx, db: &Db) -> Result<Caller, ApiError> {
    let hash = token_hash(ctx).ok_or_else(ApiError::unauthorized)?;
    let row = db
        .row(
            &format!("SELECT id, role FROM {SESSION_ACCOUNT}"),
            &[ParameterValue::Binary(hash.to_vec())],
        )
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let role: String = column(&row, "role")?;
    Ok(Caller {
        id: column(&row, "id")?,
        role: Role::parse(&role).map_err(ApiError::internal)?,
    })
}

/// A database connection (where the route's reads go) and the caller
/// behind the request's token, or 401.
pub async fn authenticated(ctx: &Ctx) -> Result<(Db, Caller), ApiError> {
    let db = Db::open(&ctx.config, ctx.reads).await?;
    let caller = authenticate(ctx, &db).await?;
    Ok((db, caller))
}
