//! File content in Postgres: chunks under a storage key. An upload streams
//! the request body into chunks staged under a fresh key (each chunk its own
//! short statement), hashing as it goes; the caller then publishes it in one
//! short transaction. A failed or oversized upload is removed at once; one
//! the component never finished (a crash) is swept when idle too long.

use crate::error::StoreError;
use crate::files::VisibleFile;
use bytes::Bytes;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use spin_sdk::pg::ParameterValue;
use spindrive_domain::file::FileId;
use spindrive_service::db::{Db, Target, column};
use spindrive_service::{Caller, Config};
use std::time::{Duration, Instant};

/// Bytes per stored chunk.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Content staged by an upload, not yet visible.
pub struct Staged {
    pub storage_key: String,
    pub size: i64,
    pub sha256: [u8; 32],
}

fn key(storage_key: &str) -> ParameterValue {
    ParameterValue::Uuid(storage_key.to_owned())
}

/// How many bytes an upload may bring, and why.
#[derive(Clone, Copy, Debug)]
pub struct Allowance {
    pub bytes: u64,
    /// The owner's quota (not the upload size limit) sets `bytes`.
    pub by_quota: bool,
}

impl Allowance {
    /// 413 before reading a byte when the declared length is over.
    pub fn check_declared(self, content_length: Option<u64>) -> Result<(), StoreError> {
        match content_length {
            Some(length) if length > self.bytes => Err(self.refusal()),
            _ => Ok(()),
        }
    }

    /// What going over this allowance is.
    pub fn refusal(self) -> StoreError {
        if self.by_quota {
            StoreError::QuotaExceeded
        } else {
            StoreError::TooLarge(self.bytes)
        }
    }
}

/// What `owner_id` may still store: the upload limit, or less if the
/// quota is nearer; `replacing` bytes are given back by the upload.
pub async fn allowance(
    db: &Db,
    config: &Config,
    owner_id: i64,
    replacing: i64,
) -> Result<Allowance, StoreError> {
    let row = db
        .row(
            "SELECT greatest(coalesce(quota_bytes, $2) - used_bytes + $3, 0) AS free FROM users WHERE id = $1",
            &[
                ParameterValue::Int64(owner_id),
                ParameterValue::Int64(config.default_quota_bytes),
                ParameterValue::Int64(replacing),
            ],
        )
        .await?
        .ok_or(StoreError::NotFound("user"))?;
    let free = column::<i64>(&row, "free")? as u64;
    Ok(if free < config.max_upload_bytes {
        Allowance {
            bytes: free,
            by_quota: true,
        }
    } else {
        Allowance {
            bytes: config.max_upload_bytes,
            by_quota: false,
        }
    })
}

/// Streams `body` (a request's, or a worker's result) into staged chunks;
/// at most `allowance` bytes (413 beyond, with nothing kept). Any failure
/// removes what was staged.
///
/// No database connection is held while the client sends: each chunk
/// (and each progress mark) takes one from the runtime's pool and gives it
/// back, so slow uploads cannot drain the pool every request shares.
pub async fn stage<B: http_body::Body<Data = Bytes> + Unpin>(
    config: &Config,
    owner: Caller,
    mut body: B,
    allowance: Allowance,
) -> Result<Staged, StoreError> {
    let db = Db::connect(config).await?;
    sweep(&db, config).await?;
    let row = db
        .row(
            "INSERT INTO uploads (storage_key, user_id) VALUES (gen_random_uuid(), $1) RETURNING storage_key::text AS storage_key",
            &[ParameterValue::Int64(owner.id)],
        )
        .await?
        .ok_or_else(|| StoreError::corrupt("INSERT returned no row"))?;
    let storage_key: String = column(&row, "storage_key")?;
    drop(db);
    let progress_every = Duration::from_secs((config.upload_stale_seconds / 4).clamp(1, 60) as u64);
    match stream_chunks(config, &storage_key, &mut body, allowance, progress_every).await {
        Ok((size, sha256)) => Ok(Staged {
            storage_key,
            size,
            sha256,
        }),
        Err(error) => {
            discard(&Db::connect(config).await?, &storage_key).await?;
            Err(error)
        }
    }
}

async fn stream_chunks<B: http_body::Body<Data = Bytes> + Unpin>(
    config: &Config,
    storage_key: &str,
    body: &mut B,
    allowance: Allowance,
    progress_every: Duration,
) -> Result<(i64, [u8; 32]), StoreError> {
    let mut hasher = Sha256::new();
    let mut buffer: Vec<u8> = Vec::with_capacity(CHUNK_BYTES);
    let mut total: u64 = 0;
    let mut seq: i32 = 0;
    let mut last_progress = Instant::now();
    loop {
        let frame = match body.frame().await {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(_)) => {
                return Err(StoreError::UploadInterrupted);
            }
        };
        let Ok(mut data) = frame.into_data() else { continue };
        total += data.len() as u64;
        if total > allowance.bytes {
            return Err(allowance.refusal());
        }
        // A slow upload that is still moving is never swept, whether or
        // not it has filled a chunk since.
        if last_progress.elapsed() >= progress_every {
            touch(&Db::connect(config).await?, storage_key).await?;
            last_progress = Instant::now();
        }
        hasher.update(&data);
        while !data.is_empty() {
            let take = (CHUNK_BYTES - buffer.len()).min(data.len());
            buffer.extend_from_slice(&data.split_to(take));
            if buffer.len() == CHUNK_BYTES {
                let db = Db::connect(config).await?;
                write_chunk(&db, storage_key, seq, std::mem::take(&mut buffer)).await?;
                buffer.reserve(CHUNK_BYTES);
                seq += 1;
            }
        }
    }
    if !buffer.is_empty() {
        write_chunk(&Db::connect(config).await?, storage_key, seq, buffer).await?;
    }
    Ok((total as i64, hasher.finalize().into()))
}

/// Writes one chunk while the upload is still live (not swept).
async fn write_chunk(db: &Db, storage_key: &str, seq: i32, data: Vec<u8>) -> Result<(), StoreError> {
    let written = db
        .execute(
            "WITH live AS (UPDATE uploads SET last_write_at = (now() AT TIME ZONE 'utc') \
                 WHERE storage_key = $1 RETURNING storage_key) \
             INSERT INTO file_chunks (storage_key, seq, data) SELECT storage_key, $2, $3 FROM live",
            &[
                key(storage_key),
                ParameterValue::Int32(seq),
                ParameterValue::Binary(data),
            ],
        )
        .await?;
    if written == 0 {
        return Err(StoreError::UploadExpired);
    }
    Ok(())
}

/// Records progress on an upload; 408 if the sweep took it meanwhile.
async fn touch(db: &Db, storage_key: &str) -> Result<(), StoreError> {
    let live = db
        .execute(
            "UPDATE uploads SET last_write_at = (now() AT TIME ZONE 'utc') WHERE storage_key = $1",
            &[key(storage_key)],
        )
        .await?;
    if live == 0 {
        return Err(StoreError::UploadExpired);
    }
    Ok(())
}

/// Removes staged content that will never be published.
pub async fn discard(db: &Db, storage_key: &str) -> Result<(), StoreError> {
    db.execute(
        "DELETE FROM file_chunks WHERE storage_key = $1",
        &[key(storage_key)],
    )
    .await?;
    db.execute("DELETE FROM uploads WHERE storage_key = $1", &[key(storage_key)])
        .await?;
    Ok(())
}

/// Ends staging inside a publishing transaction; 408 if swept meanwhile.
async fn claim(db: &Db, staged: &Staged) -> Result<(), StoreError> {
    let claimed = db
        .execute(
            "DELETE FROM uploads WHERE storage_key = $1",
            &[key(&staged.storage_key)],
        )
        .await?;
    if claimed == 0 {
        return Err(StoreError::UploadExpired);
    }
    Ok(())
}

/// Publishes staged content as a new file owned by `owner`, in one
/// transaction, which `within` joins with the new file's id (a worker
/// records its job's result there, so the two commit or fail together).
pub async fn publish_new(
    db: &Db,
    owner: Caller,
    staged: &Staged,
    file_name: &str,
    content_type: &str,
    default_quota: i64,
    within: impl AsyncFnOnce(&Db, &str) -> Result<(), StoreError>,
) -> Result<String, StoreError> {
    let published = db
        .transaction(async |db| {
            claim(db, staged).await?;
            let row = db
                .row(
                    "INSERT INTO files (id, owner_id, file_name, file_path, file_size, content_type, sha256) \
                     VALUES (gen_random_uuid(), $1, $2, 'pg:' || $3, $4, $5, $6) RETURNING id::text AS id",
                    &[
                        ParameterValue::Int64(owner.id),
                        ParameterValue::Str(file_name.to_owned()),
                        ParameterValue::Str(staged.storage_key.clone()),
                        ParameterValue::Int64(staged.size),
                        ParameterValue::Str(content_type.to_owned()),
                        ParameterValue::Binary(staged.sha256.to_vec()),
                    ],
                )
                .await?
                .ok_or_else(|| StoreError::corrupt("INSERT returned no row"))?;
            // The owner's grant row comes with the file (a trigger).
            let id: String = column(&row, "id")?;
            within_quota(db, owner.id, default_quota).await?;
            within(db, &id).await?;
            Ok(id)
        })
        .await;
    if published.is_err() {
        discard(db, &staged.storage_key).await?;
    }
    published
}

/// 413 unless the owner's files fit in their quota. Called after the
/// change, in its transaction: the usage trigger holds the owner's row, so
/// racing uploads are judged one after another on their combined usage.
async fn within_quota(db: &Db, owner_id: i64, default_quota: i64) -> Result<(), StoreError> {
    let row = db
        .row(
            "SELECT used_bytes <= coalesce(quota_bytes, $2) AS fits FROM users WHERE id = $1",
            &[
                ParameterValue::Int64(owner_id),
                ParameterValue::Int64(default_quota),
            ],
        )
        .await?
        .ok_or(StoreError::NotFound("user"))?;
    if column::<bool>(&row, "fits")? {
        Ok(())
    } else {
        Err(StoreError::QuotaExceeded)
    }
}

/// A content replacement: which file, and the content it must still have
/// (`If-Match`), if the client said.
pub struct Replacement<'a> {
    pub file: &'a FileId,
    pub owner_id: i64,
    /// The SHA-256 (hex) the content must still have.
    pub expected_sha256: Option<&'a str>,
    pub content_type: &'a str,
    pub default_quota: i64,
}

/// Swaps a file's content for staged content in one transaction, which
/// `within` joins (to tell others): readers see the old bytes or the new,
/// never a mix (old chunks stay until swept).
/// With an expected digest, the swap happens only if the content is still
/// that one (412 otherwise), checked by the UPDATE itself.
pub async fn publish_replacement(
    db: &Db,
    staged: &Staged,
    replacement: &Replacement<'_>,
    within: impl AsyncFnOnce(&Db) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let file = replacement.file;
    let replaced = db
        .transaction(async |db| {
            crate::files::lock_owner(db, file).await?;
            claim(db, staged).await?;
            let changed = db
                .execute(
                    "UPDATE files SET file_path = 'pg:' || $2, file_size = $3, content_type = $4, sha256 = $5, \
                     updated_at = (now() AT TIME ZONE 'utc') WHERE id = $1 AND ($6::text IS NULL OR encode(sha256, 'hex') = $6)",
                    &[
                        ParameterValue::Uuid(file.as_ref().to_owned()),
                        ParameterValue::Str(staged.storage_key.clone()),
                        ParameterValue::Int64(staged.size),
                        ParameterValue::Str(replacement.content_type.to_owned()),
                        ParameterValue::Binary(staged.sha256.to_vec()),
                        replacement
                            .expected_sha256
                            .map_or(ParameterValue::DbNull, |sha| ParameterValue::Str(sha.to_owned())),
                    ],
                )
                .await?;
            if changed == 0 {
                return Err(if crate::files::exists(db, file).await? {
                    StoreError::PreconditionFailed
                } else {
                    StoreError::NotFound("file")
                });
            }
            within_quota(db, replacement.owner_id, replacement.default_quota).await?;
            within(db).await
        })
        .await;
    if replaced.is_err() {
        discard(db, &staged.storage_key).await?;
    }
    replaced
}

/// Removes released content now (a deleted file's bytes).
pub async fn remove_released(db: &Db, storage_key: &str) -> Result<(), StoreError> {
    db.transaction(async |db| {
        db.execute(
            "DELETE FROM file_chunks WHERE storage_key = $1",
            &[key(storage_key)],
        )
        .await?;
        db.execute(
            "DELETE FROM released_content WHERE storage_key = $1",
            &[key(storage_key)],
        )
        .await?;
        Ok(())
    })
    .await
}

/// Removes abandoned uploads and released content past its grace period
/// (the database's `sweep_content`, which the schedule also runs).
pub async fn sweep(db: &Db, config: &Config) -> Result<(), StoreError> {
    db.execute(
        "SELECT sweep_content($1, $2)",
        &[
            ParameterValue::Floating64(config.upload_stale_seconds as f64),
            ParameterValue::Floating64(config.release_grace_seconds as f64),
        ],
    )
    .await?;
    Ok(())
}

/// Reads bytes `start..end` of a file's content in order, a chunk (or the
/// part of one at either end of the range) per `next`, each its own short
/// statement on a connection taken from the runtime's pool for just that
/// chunk: no connection, transaction or snapshot is held while the client
/// reads, so slow downloads cannot drain the pool every request shares.
pub struct ContentReader {
    config: Config,
    file: VisibleFile,
    offset: u64,
    end: u64,
}

impl ContentReader {
    /// `start..end` must lie within the file.
    pub fn new(config: Config, file: VisibleFile, start: u64, end: u64) -> Self {
        ContentReader {
            config,
            file,
            offset: start,
            end,
        }
    }

    /// The next piece of the range; `None` once it is all read, or after
    /// an error (a chunk gone because the content was released mid-read).
    pub async fn next(&mut self) -> Option<Result<Vec<u8>, StoreError>> {
        if self.offset >= self.end {
            return None;
        }
        let chunk = CHUNK_BYTES as u64;
        let (seq, within) = (self.offset / chunk, self.offset % chunk);
        let len = (chunk - within).min(self.end - self.offset);
        // Content never changes under a storage key, and a synchronous
        // standby has every acknowledged chunk: the read address serves it.
        let read = match Db::open(&self.config, Target::Replica).await {
            Ok(db) => read(&db, &self.file, seq as i32, within as i32, len as i32).await,
            Err(error) => Err(error.into()),
        };
        self.offset = match &read {
            Ok(_) => self.offset + len,
            Err(_) => self.end,
        };
        Some(read)
    }
}

/// `len` bytes of a file's content from byte `offset` of chunk `seq`.
async fn read(db: &Db, file: &VisibleFile, seq: i32, offset: i32, len: i32) -> Result<Vec<u8>, StoreError> {
    let chunk_len = (file.size - i64::from(seq) * CHUNK_BYTES as i64).min(CHUNK_BYTES as i64);
    // A whole chunk is read as stored: `substring` costs Postgres an extra
    // pass over the detoasted value (about 0.8 ms per MiB measured here),
    // so it is kept for the partial chunks at the ends of a byte range.
    let data = if offset == 0 && i64::from(len) == chunk_len {
        db.first_bytes(
            "SELECT data FROM file_chunks WHERE storage_key = $1 AND seq = $2",
            &[key(&file.storage_key), ParameterValue::Int32(seq)],
        )
        .await?
    } else {
        db.first_bytes(
            "SELECT substring(data FROM $3 FOR $4) AS data FROM file_chunks WHERE storage_key = $1 AND seq = $2",
            &[
                key(&file.storage_key),
                ParameterValue::Int32(seq),
                ParameterValue::Int32(offset + 1),
                ParameterValue::Int32(len),
            ],
        )
        .await?
    }
    .ok_or_else(|| StoreError::corrupt(format!("chunk {seq} of {} is missing", file.storage_key)))?;
    if data.len() != len as usize {
        return Err(StoreError::corrupt(format!(
            "chunk {seq} of {} is short",
            file.storage_key
        )));
    }
    Ok(data)
}
