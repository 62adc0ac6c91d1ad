//! The `files` table, always read together with the caller's access, so a
//! file the caller may not see is simply not found.

use crate::error::StoreError;
use crate::notifications::FileEvent;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use spin_sdk::pg::{ParameterValue, Row};
use spindrive_domain::file::{Access, FileId, FileName, Level};
use spindrive_domain::time::rfc3339;
use spindrive_domain::transform::SEARCH_LANGUAGES;
use spindrive_service::Caller;
use spindrive_service::db::{Db, column};

/// A file's metadata and what the caller holds on it.
#[derive(Clone, Debug)]
pub struct VisibleFile {
    pub id: FileId,
    pub file_name: String,
    pub size: i64,
    pub content_type: String,
    pub sha256: String,
    pub is_shared: bool,
    pub owner_id: i64,
    pub owner_username: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Bumped by every change to the row: the metadata's ETag.
    pub version: i64,
    /// Where the content is (the key of `pg:<key>`).
    pub storage_key: String,
    pub access: Access,
    /// How well it matched a content search (lists by relevance only).
    pub relevance: Option<f32>,
}

/// What every read of a file selects: the file, its owner, and (as
/// `grant_level`) the caller's grant if the query joins one.
const FILE_COLUMNS: &str = "f.id::text AS id, f.id AS sort_id, f.file_name, f.file_size, f.content_type, \
     encode(f.sha256, 'hex') AS sha256, f.is_shared, f.created_at, f.updated_at, f.version, \
     substr(f.file_path, 4) AS storage_key, u.id AS owner_id, u.username AS owner_username";

/// Every file with the caller's own grant, if any (`$1` is the caller's id).
const FILES_WITH_GRANT: &str = "files f JOIN users u ON u.id = f.owner_id \
     LEFT JOIN permissions g ON g.file_id = f.id AND g.user_id = $1 AND NOT g.is_owner";

impl VisibleFile {
    fn from_row(row: &Row, caller: Caller) -> Result<Self, StoreError> {
        let owner_id: i64 = column(row, "owner_id")?;
        let grant: Option<String> = column(row, "grant_level")?;
        let grant = grant
            .as_deref()
            .map(Level::parse)
            .transpose()
            .map_err(StoreError::corrupt)?;
        Ok(VisibleFile {
            id: FileId::parse(&column::<String>(row, "id")?)
                .ok_or_else(|| StoreError::corrupt("the database holds an invalid file id"))?,
            file_name: column(row, "file_name")?,
            size: column(row, "file_size")?,
            content_type: column(row, "content_type")?,
            sha256: column(row, "sha256")?,
            is_shared: column(row, "is_shared")?,
            owner_id,
            owner_username: column(row, "owner_username")?,
            created_at: column(row, "created_at")?,
            updated_at: column(row, "updated_at")?,
            version: column(row, "version")?,
            storage_key: column(row, "storage_key")?,
            access: Access::of(caller.role, owner_id == caller.id, grant),
            relevance: row.get::<f32>("relevance"),
        })
    }

    /// The file as the API shows it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id.as_ref(),
            "file_name": self.file_name,
            "size": self.size,
            "content_type": self.content_type,
            "sha256": self.sha256,
            "owner": { "id": self.owner_id, "username": self.owner_username },
            "is_shared": self.is_shared,
            "my_permission": self.access.level().map(Level::as_str),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }

    /// The strong ETag of the metadata (`/api/files/:id`).
    pub fn metadata_etag(&self) -> String {
        format!("\"v{}\"", self.version)
    }

    /// 404 unless the caller may act at `level` (invisible and forbidden
    /// look the same).
    pub fn require(self, level: Level) -> Result<Self, StoreError> {
        if self.access.allows(level) {
            Ok(self)
        } else {
            Err(StoreError::NotFound("file"))
        }
    }
}

fn caller_id(caller: Caller) -> ParameterValue {
    ParameterValue::Int64(caller.id)
}

/// The file with `id`, if the caller can see it.
pub async fn visible(db: &Db, caller: Caller, id: &FileId) -> Result<Option<VisibleFile>, StoreError> {
    let row = db
        .row(
            &format!(
                "SELECT {FILE_COLUMNS}, g.permission AS grant_level FROM {FILES_WITH_GRANT} WHERE f.id = $2"
            ),
            &[caller_id(caller), ParameterValue::Uuid(id.as_ref().to_owned())],
        )
        .await?;
    let file = row.map(|row| VisibleFile::from_row(&row, caller)).transpose()?;
    Ok(file.filter(|f| f.access.is_visible()))
}

/// The file with `id`, visible to the caller at `level`; otherwise 404,
/// whether it is missing, hidden or merely forbidden.
pub async fn visible_at(
    db: &Db,
    caller: Caller,
    id: &FileId,
    level: Level,
) -> Result<VisibleFile, StoreError> {
    visible(db, caller, id)
        .await?
        .ok_or(StoreError::NotFound("file"))?
        .require(level)
}

/// Whether a file with `id` exists (whoever may see it).
pub async fn exists(db: &Db, id: &FileId) -> Result<bool, StoreError> {
    Ok(db
        .row(
            "SELECT 1 AS one FROM files WHERE id = $1",
            &[ParameterValue::Uuid(id.as_ref().to_owned())],
        )
        .await?
        .is_some())
}

/// Which files a list covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Owned,
    Shared,
    All,
}

/// The order of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    Name,
    CreatedAt,
    Size,
    /// Best match first: a name match counts 1, the text's rank is added.
    Relevance,
}

/// A content search's score of `f` (`$2` is the name pattern, `hits` its
/// text matches).
const RELEVANCE: &str = "((f.file_name ILIKE $2 ESCAPE '\\')::int + coalesce(hits.rank, 0))::real";

impl Sort {
    /// The key the list is sorted by, as selected.
    fn column(self) -> &'static str {
        match self {
            Sort::Name => "file_name",
            Sort::CreatedAt => "created_at",
            Sort::Size => "file_size",
            Sort::Relevance => "relevance",
        }
    }

    /// The key as an expression over `f` (for the keyset comparison).
    fn expression(self) -> String {
        match self {
            Sort::Relevance => RELEVANCE.to_owned(),
            other => format!("f.{}", other.column()),
        }
    }
}

/// Where a page ends: the sort key and id of its last file, and the list
/// it belongs to (a cursor is only valid for the same list).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub scope: Scope,
    pub sort: Sort,
    pub descending: bool,
    pub query: Option<String>,
    pub after_key: Value,
    pub after_id: String,
}

/// A list request.
pub struct Listing {
    pub scope: Scope,
    pub sort: Sort,
    pub descending: bool,
    /// A substring of the name (case-insensitive).
    pub query: Option<String>,
    /// Whether `query` also searches the files' text (sorted by relevance).
    pub content: bool,
    pub after: Option<Position>,
}

/// Escapes `%`, `_` and `\` for LIKE.
fn like_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// One page of the caller's files, in keyset order (`(key, id)`), so each
/// file appears once even while files are added.
///
/// Each scope is read by an index that matches its order, so a page costs
/// the same however many files others have: the caller's own files by
/// `(owner_id, key, id)`, the files shared with them through their grants
/// (`(user_id, file_id)`, then each file by its key), and "all" as the two
/// merged (they never overlap: the owner holds no grant). An
/// administrator's "all" is every file, by `(key, id)`.
pub async fn page(
    db: &Db,
    caller: Caller,
    listing: &Listing,
    rows: i64,
) -> Result<Vec<VisibleFile>, StoreError> {
    let mut params = vec![caller_id(caller)];
    let mut filters = String::new();
    // A content search: the files whose name or text matches, ranked (each
    // row's text is parsed with its own configuration).
    let (mut with, mut joins, mut select) = (String::new(), String::new(), String::new());
    if let Some(query) = &listing.query {
        params.push(ParameterValue::Str(like_pattern(query)));
        if listing.content {
            params.push(ParameterValue::Str(query.clone()));
            let languages = SEARCH_LANGUAGES
                .iter()
                .map(|l| format!("'{l}'"))
                .collect::<Vec<_>>()
                .join(", ");
            // A query no index can answer (only negations, or no words)
            // matches no text: names only.
            with = format!(
                "WITH query AS (SELECT language, websearch_to_tsquery(language, $3) AS terms \
                   FROM unnest(ARRAY[{languages}]::regconfig[]) AS language), \
                 hits AS NOT MATERIALIZED (SELECT t.file_id, t.file_path, ts_rank(t.words, query.terms) AS rank \
                   FROM file_texts t JOIN query ON t.language = query.language AND t.words @@ query.terms \
                   WHERE querytree(query.terms) <> 'T') "
            );
            // Words of a file's earlier content (a worker that read it
            // committed after the new content) never count.
            joins = " LEFT JOIN hits ON hits.file_id = f.id AND hits.file_path = f.file_path".to_owned();
            select = format!(", {RELEVANCE} AS relevance");
            filters += " AND (f.file_name ILIKE $2 ESCAPE '\\' OR hits.file_id IS NOT NULL)";
            if listing.scope == Scope::All && caller.is_admin() {
                // Every file is in scope: the candidates come from the
                // name's trigram index and the words' GIN index. Otherwise
                // the caller's own files are checked each by its key, and a
                // common word in everyone else's files costs nothing.
                filters += " AND f.id IN (SELECT id FROM files WHERE file_name ILIKE $2 ESCAPE '\\' \
                             UNION ALL SELECT file_id FROM hits)";
            }
        } else {
            filters += " AND f.file_name ILIKE $2 ESCAPE '\\'";
        }
    }
    let column = listing.sort.column();
    let direction = if listing.descending { "DESC" } else { "ASC" };
    if let Some(after) = &listing.after {
        params.push(after_key(listing, after)?);
        params.push(ParameterValue::Uuid(after.after_id.clone()));
        let comparison = if listing.descending { "<" } else { ">" };
        filters += &format!(
            " AND ({}, f.id) {comparison} (${}, ${})",
            listing.sort.expression(),
            params.len() - 1,
            params.len()
        );
    }
    params.push(ParameterValue::Int64(rows));
    let order = format!(
        "ORDER BY {column} {direction}, sort_id {direction} LIMIT ${}",
        params.len()
    );
    let owned = format!(
        "SELECT {FILE_COLUMNS}{select}, NULL::varchar AS grant_level FROM files f JOIN users u ON u.id = f.owner_id{joins} \
         WHERE f.owner_id = $1{filters} {order}"
    );
    let shared = format!(
        "SELECT {FILE_COLUMNS}{select}, g.permission AS grant_level FROM permissions g \
         JOIN files f ON f.id = g.file_id JOIN users u ON u.id = f.owner_id{joins} \
         WHERE g.user_id = $1 AND NOT g.is_owner{filters} {order}"
    );
    let sql = match listing.scope {
        Scope::Owned => owned,
        Scope::Shared => shared,
        Scope::All if caller.is_admin() => {
            format!(
                "SELECT {FILE_COLUMNS}{select}, g.permission AS grant_level FROM {FILES_WITH_GRANT}{joins} WHERE true{filters} {order}"
            )
        }
        Scope::All => format!("SELECT * FROM (({owned}) UNION ALL ({shared})) page {order}"),
    };
    let rows = db.rows(&format!("{with}{sql}"), &params).await?;
    rows.iter()
        .map(|row| VisibleFile::from_row(row, caller))
        .collect()
}

/// The cursor's sort key as a parameter of the list's type.
fn after_key(listing: &Listing, after: &Position) -> Result<ParameterValue, StoreError> {
    let not_ours = || spindrive_domain::ValidationError::new("cursor", "is not a cursor this API returned");
    Ok(match (listing.sort, &after.after_key) {
        (Sort::Name, Value::String(name)) => ParameterValue::Str(name.clone()),
        (Sort::Size, Value::Number(size)) => ParameterValue::Int64(size.as_i64().ok_or_else(not_ours)?),
        (Sort::Relevance, Value::Number(rank)) => {
            ParameterValue::Floating32(rank.as_f64().ok_or_else(not_ours)? as f32)
        }
        (Sort::CreatedAt, Value::String(at)) => NaiveDateTime::parse_from_str(at, POSITION_TIME)
            .map_err(|_| not_ours())?
            .into(),
        _ => return Err(spindrive_domain::ValidationError::new("cursor", "does not match this list").into()),
    })
}

/// The position after `file` in a list sorted by `sort`.
pub fn position_after(file: &VisibleFile, listing: &Listing) -> Position {
    let after_key = match listing.sort {
        Sort::Name => Value::String(file.file_name.clone()),
        Sort::Size => Value::from(file.size),
        Sort::CreatedAt => Value::String(file.created_at.format(POSITION_TIME).to_string()),
        Sort::Relevance => Value::from(file.relevance.unwrap_or(0.0)),
    };
    Position {
        scope: listing.scope,
        sort: listing.sort,
        descending: listing.descending,
        query: listing.query.clone(),
        after_key,
        after_id: file.id.as_ref().to_owned(),
    }
}

/// Timestamps in cursors, to the microsecond.
pub(crate) const POSITION_TIME: &str = "%Y-%m-%dT%H:%M:%S%.f";

/// Renames a file, if it still has metadata version `expected` when one
/// is given (`If-Match`, checked by the UPDATE itself: 412 otherwise).
pub async fn rename(db: &Db, id: &FileId, name: &FileName, expected: Option<i64>) -> Result<(), StoreError> {
    let changed = db
        .execute(
            "UPDATE files SET file_name = $2, updated_at = (now() AT TIME ZONE 'utc') \
             WHERE id = $1 AND ($3::bigint IS NULL OR version = $3)",
            &[
                ParameterValue::Uuid(id.as_ref().to_owned()),
                ParameterValue::Str(name.as_ref().to_owned()),
                expected.map_or(ParameterValue::DbNull, ParameterValue::Int64),
            ],
        )
        .await?;
    match changed {
        0 if exists(db, id).await? => Err(StoreError::PreconditionFailed),
        0 => Err(StoreError::NotFound("file")),
        _ => Ok(()),
    }
}

/// Locks the owner of file `id`: what deletes or replaces a file does
/// first. Publishing a file locks its owner (the usage update) before the
/// rows a change reaches (the file, a transformation's job), so one lock
/// order holds and nothing deadlocks. NO KEY UPDATE, like that update,
/// leaves the row's key free for foreign-key checks.
pub(crate) async fn lock_owner(db: &Db, id: &FileId) -> Result<(), StoreError> {
    db.execute(
        "SELECT 1 FROM users WHERE id = (SELECT owner_id FROM files WHERE id = $1) FOR NO KEY UPDATE",
        &[ParameterValue::Uuid(id.as_ref().to_owned())],
    )
    .await?;
    Ok(())
}

/// Deletes a file (its grants go with it, after everyone who held one but
/// the deleter is told) and returns the storage key of the content it
/// pointed to at the moment of deletion, which the caller removes; `None`
/// if it was already gone.
pub async fn delete(db: &Db, id: &FileId, deletion: &FileEvent<'_>) -> Result<Option<String>, StoreError> {
    db.transaction(async |db| {
        lock_owner(db, id).await?;
        deletion.tell_holders(db, "file_deleted", "deleted").await?;
        let row = db
            .row(
                "DELETE FROM files WHERE id = $1 RETURNING substr(file_path, 4) AS storage_key",
                &[ParameterValue::Uuid(id.as_ref().to_owned())],
            )
            .await?;
        Ok(row.map(|row| column(&row, "storage_key")).transpose()?)
    })
    .await
}
