//! The `transformation_jobs` table. The row is the truth: creating a job
//! inserts it `pending`; a worker claims it with one conditional UPDATE
//! that draws a fresh `run_id` and a lease; it is finished (complete or
//! failed) only while that claim still holds, so a duplicate wake-up, a
//! worker that outlived its lease, or a source deleted meanwhile can never
//! finish a job twice or leave a result behind.

use crate::error::StoreError;
use crate::files::POSITION_TIME;
use crate::notifications::{self, Notice};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use spin_sdk::pg::{ParameterValue, Row};
use spindrive_domain::ValidationError;
use spindrive_domain::file::{FileId, canonical_uuid};
use spindrive_domain::paging::{decode_cursor, page, rows_to_fetch};
use spindrive_domain::time::rfc3339;
use spindrive_domain::transform::{JobStatus, Transformation};
use spindrive_service::db::{Db, column};

/// A job as its requester sees it.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: String,
    pub file_id: Option<String>,
    pub transformation_type: String,
    pub params: Value,
    pub status: JobStatus,
    pub result_file_id: Option<String>,
    /// What the job produced besides its file (OCR's lines and boxes);
    /// read with one job, never in lists.
    pub result_details: Option<Value>,
    pub error: Option<String>,
    pub attempts: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Waiting longer than a worker should take to notice it: pending for
    /// seconds, or running past its lease (its worker died). A wake-up
    /// sets it moving again.
    pub stalled: bool,
}

const JOB_COLUMNS: &str = "id::text AS id, file_id::text AS file_id, transformation_type, \
     params::text AS params, status, result_file_id::text AS result_file_id, error, attempts, \
     created_at, updated_at, \
     (status = 'pending' AND updated_at < (now() AT TIME ZONE 'utc') - interval '5 seconds') \
       OR (status = 'running' AND lease_expires_at < (now() AT TIME ZONE 'utc')) AS stalled";

/// At most one wake-up per job in this many seconds, however often it is
/// followed.
const WAKE_INTERVAL_SECONDS: f64 = 5.0;

impl Job {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        let params: String = column(row, "params")?;
        let status: String = column(row, "status")?;
        // Selected for one job only (OCR's can be long).
        let details: Option<String> = row.get("result_details");
        Ok(Job {
            id: column(row, "id")?,
            file_id: column(row, "file_id")?,
            transformation_type: column(row, "transformation_type")?,
            params: serde_json::from_str(&params).map_err(StoreError::corrupt)?,
            status: JobStatus::parse(&status).map_err(StoreError::corrupt)?,
            result_file_id: column(row, "result_file_id")?,
            result_details: details
                .map(|details| serde_json::from_str(&details))
                .transpose()
                .map_err(StoreError::corrupt)?,
            error: column(row, "error")?,
            attempts: column(row, "attempts")?,
            created_at: column(row, "created_at")?,
            updated_at: column(row, "updated_at")?,
            stalled: column(row, "stalled")?,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "file_id": self.file_id,
            "transformation_type": self.transformation_type,
            "params": self.params,
            "status": self.status.as_str(),
            "result_file_id": self.result_file_id,
            "result_details": self.result_details,
            "error": self.error,
            "attempts": self.attempts,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }
}

fn uuid(id: &str) -> ParameterValue {
    ParameterValue::Uuid(id.to_owned())
}

/// Records a `pending` job of `user_id` on `file`, unless they already
/// have `max_active` jobs pending or running (429).
pub async fn create(
    db: &Db,
    user_id: i64,
    file: &FileId,
    transformation: &Transformation,
    max_active: i64,
) -> Result<Job, StoreError> {
    let params = serde_json::to_vec(&transformation.params()).map_err(StoreError::corrupt)?;
    db.transaction(async |db| {
        // Holding the user's row makes concurrent requests count in turn.
        db.execute(
            "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE",
            &[ParameterValue::Int64(user_id)],
        )
        .await?;
        let row = db
            .row(
                &format!(
                    "INSERT INTO transformation_jobs (id, file_id, user_id, transformation_type, params) \
                     SELECT gen_random_uuid(), $1, $2, $3, $4 \
                      WHERE (SELECT count(*) FROM transformation_jobs \
                              WHERE user_id = $2 AND status IN ('pending', 'running')) < $5 \
                     RETURNING {JOB_COLUMNS}"
                ),
                &[
                    uuid(file.as_ref()),
                    ParameterValue::Int64(user_id),
                    ParameterValue::Str(transformation.kind().to_owned()),
                    ParameterValue::Jsonb(params),
                    ParameterValue::Int64(max_active),
                ],
            )
            .await?;
        match row {
            Some(row) => Job::from_row(&row),
            None => Err(StoreError::TooManyJobs(max_active)),
        }
    })
    .await
    .map_err(|error| match error {
        // The file was deleted while the job was being recorded.
        StoreError::Db(error) if error.violated_constraint() == Some("transformation_jobs_file_id_fkey") => {
            StoreError::NotFound("file")
        }
        other => other,
    })
}

/// A job of `user_id`'s.
pub async fn mine(db: &Db, user_id: i64, job_id: &str) -> Result<Option<Job>, StoreError> {
    // Anything but a UUID names no job: not found, like someone else's.
    let Some(id) = canonical_uuid(job_id) else {
        return Ok(None);
    };
    db.row(
        &format!(
            "SELECT {JOB_COLUMNS}, result_details::text AS result_details FROM transformation_jobs \
             WHERE id = $1 AND user_id = $2"
        ),
        &[uuid(&id), ParameterValue::Int64(user_id)],
    )
    .await?
    .map(|row| Job::from_row(&row))
    .transpose()
}

/// Whether a wake-up for this stalled job is due now; records it if so,
/// so followers polling a stalled job publish one wake-up per interval,
/// not one per poll.
pub async fn wake_due(db: &Db, job: &Job) -> Result<bool, StoreError> {
    let due = db
        .execute(
            "UPDATE transformation_jobs SET woken_at = (now() AT TIME ZONE 'utc') \
              WHERE id = $1 AND status IN ('pending', 'running') \
                AND (woken_at IS NULL OR woken_at < (now() AT TIME ZONE 'utc') - make_interval(secs => $2))",
            &[uuid(&job.id), ParameterValue::Floating64(WAKE_INTERVAL_SECONDS)],
        )
        .await?;
    Ok(due == 1)
}

/// Which of a user's jobs to list.
pub struct JobFilter<'a> {
    pub user_id: i64,
    pub file: Option<&'a FileId>,
    pub status: Option<JobStatus>,
}

/// Where a page of jobs ends.
#[derive(Serialize, Deserialize)]
struct Position {
    created_at: String,
    id: String,
}

/// A page of jobs, newest first, and the cursor of the next page.
pub async fn list(
    db: &Db,
    filter: &JobFilter<'_>,
    limit: i64,
    cursor: Option<&str>,
) -> Result<(Vec<Job>, Option<String>), StoreError> {
    let after: Option<Position> = cursor.map(decode_cursor).transpose()?;
    let mut sql = format!("SELECT {JOB_COLUMNS} FROM transformation_jobs WHERE user_id = $1");
    let mut params = vec![ParameterValue::Int64(filter.user_id)];
    if let Some(file) = filter.file {
        params.push(uuid(file.as_ref()));
        sql.push_str(&format!(" AND file_id = ${}", params.len()));
    }
    if let Some(status) = filter.status {
        params.push(ParameterValue::Str(status.as_str().to_owned()));
        sql.push_str(&format!(" AND status = ${}", params.len()));
    }
    if let Some(after) = &after {
        let not_ours = || ValidationError::new("cursor", "is not a cursor this API returned");
        let created_at =
            NaiveDateTime::parse_from_str(&after.created_at, POSITION_TIME).map_err(|_| not_ours())?;
        let id = canonical_uuid(&after.id).ok_or_else(not_ours)?;
        params.push(created_at.into());
        params.push(uuid(&id));
        sql.push_str(&format!(
            " AND (created_at, id) < (${}, ${})",
            params.len() - 1,
            params.len()
        ));
    }
    params.push(ParameterValue::Int64(rows_to_fetch(limit)));
    sql.push_str(&format!(
        " ORDER BY created_at DESC, id DESC LIMIT ${}",
        params.len()
    ));
    let jobs = db
        .rows(&sql, &params)
        .await?
        .iter()
        .map(Job::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page(jobs, limit, |job| Position {
        created_at: job.created_at.format(POSITION_TIME).to_string(),
        id: job.id.clone(),
    }))
}

/// A job a worker holds: what to do, and the run it must finish under.
#[derive(Clone, Debug)]
pub struct Claim {
    pub job_id: String,
    pub run_id: String,
    pub file_id: String,
    pub user_id: i64,
    pub transformation_type: String,
    pub params: Value,
    pub attempts: i32,
}

/// What a worker's statements require of its job: still running under
/// its own claim (`$1` the job, `$2` the run).
const CLAIM_HOLDS: &str = "WHERE id = $1 AND run_id = $2 AND status = 'running'";

impl Claim {
    /// Updates the job (`SET set`, with `extra` parameters from `$3`) only
    /// while this claim holds; the rows changed, 0 or 1.
    async fn update(&self, db: &Db, set: &str, extra: Vec<ParameterValue>) -> Result<u64, StoreError> {
        let mut params = vec![uuid(&self.job_id), uuid(&self.run_id)];
        params.extend(extra);
        Ok(db
            .execute(
                &format!("UPDATE transformation_jobs SET {set} {CLAIM_HOLDS}"),
                &params,
            )
            .await?)
    }

    /// What the requester is told of how this job ended.
    fn notice(&self, kind: &'static str, message: String, outcome: Value) -> Notice {
        let mut data = json!({
            "job_id": self.job_id,
            "file_id": self.file_id,
            "transformation_type": self.transformation_type,
        });
        if let (Value::Object(data), Value::Object(outcome)) = (&mut data, outcome) {
            data.extend(outcome);
        }
        Notice {
            user_id: self.user_id,
            kind,
            message,
            data,
        }
    }
}

/// The columns a finished job's claim gives up.
const FINISHED: &str = "run_id = NULL, lease_expires_at = NULL, computing_since = NULL, \
     finished_at = (now() AT TIME ZONE 'utc'), updated_at = (now() AT TIME ZONE 'utc')";

/// The jobs a worker may claim, as `j`: pending, their source still
/// there, their requester's account enabled.
const CLAIMABLE: &str = "transformation_jobs j JOIN users u ON u.id = j.user_id \
     WHERE j.status = 'pending' AND j.file_id IS NOT NULL AND NOT u.disabled";

/// Claims a pending job; `None` when nothing is pending. Users take turns:
/// the job comes from the user whose latest claim is oldest (or who never
/// had one), their oldest first, so one user's queue never holds up
/// another's; disabled accounts' jobs are skipped. The lease ends
/// `lease_seconds` from now.
pub async fn claim(db: &Db, lease_seconds: i64) -> Result<Option<Claim>, StoreError> {
    let row = db
        .row(
            &format!(
                "UPDATE transformation_jobs \
                SET status = 'running', attempts = attempts + 1, run_id = gen_random_uuid(), \
                    lease_expires_at = (now() AT TIME ZONE 'utc') + make_interval(secs => $1), \
                    computing_since = NULL, claimed_at = (now() AT TIME ZONE 'utc'), \
                    updated_at = (now() AT TIME ZONE 'utc') \
              WHERE id = (SELECT j.id FROM {CLAIMABLE} \
                           ORDER BY (SELECT max(p.claimed_at) FROM transformation_jobs p \
                                      WHERE p.user_id = j.user_id AND p.claimed_at IS NOT NULL) NULLS FIRST, \
                                    j.created_at \
                           LIMIT 1 FOR UPDATE OF j SKIP LOCKED) \
                AND status = 'pending' \
             RETURNING id::text AS id, run_id::text AS run_id, file_id::text AS file_id, user_id, \
                       transformation_type, params::text AS params, attempts"
            ),
            &[ParameterValue::Floating64(lease_seconds as f64)],
        )
        .await?;
    row.map(|row| {
        let params: String = column(&row, "params")?;
        Ok(Claim {
            job_id: column(&row, "id")?,
            run_id: column(&row, "run_id")?,
            file_id: column(&row, "file_id")?,
            user_id: column(&row, "user_id")?,
            transformation_type: column(&row, "transformation_type")?,
            params: serde_json::from_str(&params).map_err(StoreError::corrupt)?,
            attempts: column(&row, "attempts")?,
        })
    })
    .transpose()
}

/// Fails with `NotFound` unless the claim's requester may still read its
/// source, so that a result is published only for someone who could read
/// it at that moment: an account enabled, and the owner, an admin or a
/// grantee. Called first in the publishing transaction, it holds the rows
/// that decide it (the account, the file, the grant) until the result is
/// committed, so a revoke, a disable or a deletion either waits for the
/// result (and then removes access to both) or comes first and this fails.
pub async fn authorize_publish(db: &Db, claim: &Claim) -> Result<(), StoreError> {
    let (user, file) = (ParameterValue::Int64(claim.user_id), uuid(&claim.file_id));
    let may = db
        .row(
            "SELECT f.owner_id = u.id OR u.role = 'admin' AS without_grant \
               FROM users u, files f WHERE u.id = $1 AND f.id = $2 AND NOT u.disabled \
                FOR SHARE OF u, f",
            &[user.clone(), file.clone()],
        )
        .await?;
    let without_grant: bool = match may {
        Some(row) => column(&row, "without_grant")?,
        None => return Err(StoreError::NotFound("file")),
    };
    if without_grant {
        return Ok(());
    }
    let granted = db
        .row(
            "SELECT 1 AS one FROM permissions WHERE file_id = $2 AND user_id = $1 FOR SHARE",
            &[user, file],
        )
        .await?;
    granted.map(|_| ()).ok_or(StoreError::NotFound("file"))
}

/// What a job produced: the new file, and details beside it.
#[derive(Clone, Copy, Debug)]
pub struct Outcome<'a> {
    pub result_id: &'a str,
    pub result_name: &'a str,
    pub details: Option<&'a Value>,
}

/// Marks the claimed job complete with its result and tells the
/// requester, inside the transaction that publishes the result. Fails with
/// `ClaimLost` (so that transaction rolls back, result and all) if the job
/// is no longer this run's: its source was deleted, or its lease expired
/// and another worker took it.
pub async fn complete(
    db: &Db,
    claim: &Claim,
    outcome: Outcome<'_>,
    source_name: &str,
) -> Result<(), StoreError> {
    let Outcome {
        result_id,
        result_name,
        details,
    } = outcome;
    let details = details
        .map(|details| serde_json::to_vec(details).map(ParameterValue::Jsonb))
        .transpose()
        .map_err(StoreError::corrupt)?
        .unwrap_or(ParameterValue::DbNull);
    let done = claim
        .update(
            db,
            &format!(
                "status = 'complete', result_file_id = $3, result_details = $4, error = NULL, {FINISHED}"
            ),
            vec![uuid(result_id), details],
        )
        .await?;
    if done != 1 {
        return Err(StoreError::ClaimLost);
    }
    let message = format!(
        "Your {} of “{source_name}” is ready: “{result_name}”",
        claim.transformation_type
    );
    let notice = claim.notice(
        "transformation_complete",
        message,
        json!({ "result_file_id": result_id }),
    );
    notifications::create(db, &notice).await?;
    Ok(())
}

/// Ends the claimed job `failed` with `error` and tells the requester, if
/// the claim still holds.
pub async fn fail(db: &Db, claim: &Claim, error: &str) -> Result<(), StoreError> {
    db.transaction(async |db| {
        let failed = claim
            .update(
                db,
                &format!("status = 'failed', error = $3, {FINISHED}"),
                vec![ParameterValue::Str(error.to_owned())],
            )
            .await?;
        if failed == 1 {
            let message = format!("Your {} failed: {error}", claim.transformation_type);
            let notice = claim.notice("transformation_failed", message, json!({ "error": error }));
            notifications::create(db, &notice).await?;
        }
        Ok(())
    })
    .await
}

/// Marks the claimed job computing, its lease now the job's time limit
/// plus a margin (`lease_seconds`): if the lease runs out before [`renew`]
/// ends this phase, the instance was stopped mid-computation and the
/// sweep fails the job at once. `false` if the claim no longer holds.
pub async fn start_computing(db: &Db, claim: &Claim, lease_seconds: i64) -> Result<bool, StoreError> {
    let marked = claim
        .update(
            db,
            "computing_since = (now() AT TIME ZONE 'utc'), \
             lease_expires_at = (now() AT TIME ZONE 'utc') + make_interval(secs => $3)",
            vec![ParameterValue::Floating64(lease_seconds as f64)],
        )
        .await?;
    Ok(marked == 1)
}

/// Extends the claimed job's lease (ending its computing phase); `false`
/// if the claim no longer holds.
pub async fn renew(db: &Db, claim: &Claim, lease_seconds: i64) -> Result<bool, StoreError> {
    let renewed = claim
        .update(
            db,
            "computing_since = NULL, \
             lease_expires_at = (now() AT TIME ZONE 'utc') + make_interval(secs => $3)",
            vec![ParameterValue::Floating64(lease_seconds as f64)],
        )
        .await?;
    Ok(renewed == 1)
}

/// Puts a claimed job back to `pending` (the worker could not finish it
/// for a reason of its own, such as the database failing over).
pub async fn release(db: &Db, claim: &Claim) -> Result<(), StoreError> {
    claim
        .update(
            db,
            "status = 'pending', run_id = NULL, lease_expires_at = NULL, computing_since = NULL, updated_at = (now() AT TIME ZONE 'utc')",
            vec![],
        )
        .await?;
    Ok(())
}

/// Settles jobs whose lease expired: failed at once if they were stopped
/// while computing, else re-queued (or, after `max_attempts`, failed).
pub async fn sweep(db: &Db, max_attempts: i32) -> Result<(), StoreError> {
    db.execute(
        "SELECT sweep_transformations($1)",
        &[ParameterValue::Int32(max_attempts)],
    )
    .await?;
    Ok(())
}

/// Whether a job waits that [`claim`] would take.
pub async fn any_claimable(db: &Db) -> Result<bool, StoreError> {
    let row = db
        .row(&format!("SELECT EXISTS (SELECT 1 FROM {CLAIMABLE}) AS any"), &[])
        .await?
        .ok_or_else(|| StoreError::corrupt("EXISTS returned no row"))?;
    Ok(column(&row, "any")?)
}
