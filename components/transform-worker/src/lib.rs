//! The transformation worker (seed File-Transformation-Service, background
//! half). A message on the queue channel wakes it; the message (a job id)
//! is only a wake-up. It settles jobs whose lease expired, then claims
//! one pending job, users taking turns, with one conditional UPDATE, so
//! duplicate or lost messages neither run a job twice nor lose it. A job
//! runs as its requester: it reads the source only while they may, and
//! its result is their new file, on their quota.

use bytes::Bytes;
use serde_json::Value;
use spindrive_domain::file::{FileId, Level};
use spindrive_domain::transform::{TextExtraction, Transformation};
use spindrive_imaging::{ImagingError, Limits};
use spindrive_ocr::OcrError;
use spindrive_pdftext::PdfError;
use spindrive_service::queue::{Queue, announce_deliveries};
use spindrive_service::{ApiError, Caller, Config, Db, TransformConfig};
use spindrive_store::content::{self, ContentReader};
use spindrive_store::error::StoreError;
use spindrive_store::files::{self, VisibleFile};
use spindrive_store::jobs::{self, Claim, Outcome};
use spindrive_store::search;
use spindrive_store::users;
use std::path::Path;
use std::time::Duration;

#[allow(unsafe_code)] // the export glue, generated
mod export {
    #[spin_sdk::redis_subscriber]
    /// The message (a job id) is only a wake-up: the queue's order decides
    /// which job runs.
    async fn on_message(_message: bytes::Bytes) -> Result<(), String> {
        super::wake().await.map_err(|error| format!("{error:?}"))
    }
}

/// Each wake-up runs at most one job, in an instance of its own: the
/// runtime's budgets (time per message, memory per instance) are then one
/// job's, and a job stopped by them takes no other with it. Before it
/// runs, it announces the next wake-up if more jobs wait, so the queue
/// drains even when messages were lost or this instance is stopped, and
/// other workers start on it at once.
async fn wake() -> Result<(), ApiError> {
    let config = Config::load().await?;
    let settings = TransformConfig::load().await?;
    let db = Db::connect(&config).await?;
    jobs::sweep(&db, settings.max_attempts).await?;
    let Some(claim) = jobs::claim(&db, settings.lease_seconds).await? else {
        return Ok(());
    };
    let more = jobs::any_claimable(&db).await?;
    drop(db);
    if more && let Some(queue) = Queue::open(&settings.redis, &settings.channel).await {
        queue.announce(b"next").await;
    }
    run(&config, &settings, &claim).await;
    Ok(())
}

/// Why a job did not complete.
enum Failure {
    /// The job cannot succeed (bad input, no access, no quota): it fails,
    /// with this message for the requester.
    Job(String),
    /// Our side failed (the database): the job goes back to the queue,
    /// while attempts remain.
    System(ApiError),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(_) => {
                Failure::Job("the source file is gone or you can no longer read it".into())
            }
            StoreError::QuotaExceeded => Failure::Job("the result does not fit in your storage quota".into()),
            StoreError::TooLarge(limit) => {
                Failure::Job(format!("the result is larger than the {limit}-byte file limit"))
            }
            other => Failure::System(other.into()),
        }
    }
}

impl From<ImagingError> for Failure {
    fn from(error: ImagingError) -> Self {
        Failure::Job(error.to_string())
    }
}

impl From<PdfError> for Failure {
    fn from(error: PdfError) -> Self {
        Failure::Job(error.to_string())
    }
}

impl From<OcrError> for Failure {
    fn from(error: OcrError) -> Self {
        Failure::Job(match error {
            OcrError::ModelsMissing(_) | OcrError::ModelsInvalid(_) => format!(
                "OCR is not set up on this server ({error}); its operator installs the models with `make models`"
            ),
            OcrError::Inference(_) | OcrError::TooSlow(_) => error.to_string(),
        })
    }
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure::System(error)
    }
}

impl From<spindrive_service::db::DbError> for Failure {
    fn from(error: spindrive_service::db::DbError) -> Self {
        Failure::System(error.into())
    }
}

/// Fails the job (telling its requester).
async fn fail(db: Db, claim: &Claim, message: &str) -> Result<(), StoreError> {
    let failed = jobs::fail(&db, claim, message).await;
    announce_deliveries(db).await;
    failed
}

/// Runs one claimed job and records how it ended.
async fn run(config: &Config, settings: &TransformConfig, claim: &Claim) {
    let recorded = match transform(config, settings, claim).await {
        Ok(()) => Ok(()),
        Err(Failure::Job(message)) => match Db::connect(config).await {
            Ok(db) => fail(db, claim, &message).await,
            Err(error) => Err(error.into()),
        },
        Err(Failure::System(error)) => {
            eprintln!(
                "job {} attempt {} stopped: {error:?}",
                claim.job_id, claim.attempts
            );
            match Db::connect(config).await {
                Ok(db) if claim.attempts >= settings.max_attempts => {
                    fail(db, claim, "the service failed repeatedly; try again later").await
                }
                Ok(db) => jobs::release(&db, claim).await,
                Err(error) => Err(error.into()),
            }
        }
    };
    // If even that failed, the lease runs out and the sweep takes over.
    if let Err(error) = recorded {
        eprintln!("job {}: cannot record its end: {error:?}", claim.job_id);
    }
}

async fn transform(config: &Config, settings: &TransformConfig, claim: &Claim) -> Result<(), Failure> {
    let transformation = Transformation::parse(&claim.transformation_type, &claim.params)
        .map_err(|error| Failure::Job(format!("this job cannot run: {error}")))?;
    let db = Db::connect(config).await?;
    let requester = users::by_id(&db, claim.user_id)
        .await?
        .ok_or(StoreError::NotFound("user"))?;
    let caller = Caller {
        id: requester.id,
        role: requester.role,
    };
    let file_id = FileId::parse(&claim.file_id).ok_or(StoreError::NotFound("file"))?;
    let source = files::visible_at(&db, caller, &file_id, Level::Read).await?;
    drop(db);
    let limits = Limits {
        max_input_bytes: settings.max_input_bytes,
        max_pixels: settings.max_pixels,
        max_output_bytes: settings.max_output_bytes,
        max_duration: Duration::from_secs(settings.max_seconds),
    };
    limits.check_input(source.size as u64)?;
    let input = read_all(config, &source).await?;
    if !jobs::start_computing(
        &Db::connect(config).await?,
        claim,
        settings.computing_lease_seconds(),
    )
    .await?
    {
        return Ok(());
    }
    let product = produce(&transformation, &input, &limits, Path::new(&settings.ocr_models))?;
    drop(input);
    if !still_mine(config, settings, claim).await? {
        return Ok(());
    }
    let name = transformation.result_name(&source.file_name, product.extension);
    let allowance = content::allowance(&Db::connect(config).await?, config, caller.id, 0).await?;
    let bytes = Bytes::from(product.bytes);
    let body = http_body_util::Full::new(bytes.clone());
    let staged = content::stage(config, caller, body, allowance).await?;
    let db = Db::connect(config).await?;
    let published = content::publish_new(
        &db,
        caller,
        &staged,
        &name,
        product.content_type,
        config.default_quota_bytes,
        async |db, result_id| {
            // Access is decided again as the result is published: a
            // requester revoked while the job ran gets no result.
            jobs::authorize_publish(db, claim).await?;
            // The text is the source's too: searching finds the scan. It
            // is indexed before the job row is touched, in the order a
            // deletion of the source locks them (no deadlock); an empty
            // text leaves what was indexed before.
            if let Some(extraction) = product.indexed_as {
                let text = std::str::from_utf8(&bytes).map_err(StoreError::corrupt)?;
                if !text.trim().is_empty() {
                    search::index(db, source.id.as_ref(), &source.storage_key, extraction, text).await?;
                }
            }
            let outcome = Outcome {
                result_id,
                result_name: &name,
                details: product.details.as_ref(),
            };
            jobs::complete(db, claim, outcome, &source.file_name).await
        },
    )
    .await;
    announce_deliveries(db).await;
    match published {
        Ok(_) => Ok(()),
        // Finished elsewhere (the source deleted meanwhile, or a lease
        // lost): the result was rolled back with the transaction.
        Err(StoreError::ClaimLost) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// What a job made.
struct Product<'a> {
    bytes: Vec<u8>,
    content_type: &'static str,
    extension: &'static str,
    details: Option<Value>,
    /// Extracted text (the bytes) is indexed under the source file.
    indexed_as: Option<&'a TextExtraction>,
}

impl<'a> Product<'a> {
    fn text(text: String, extraction: &'a TextExtraction, details: Option<Value>) -> Self {
        Product {
            bytes: text.into_bytes(),
            content_type: "text/plain; charset=utf-8",
            extension: "txt",
            details,
            indexed_as: Some(extraction),
        }
    }
}

fn produce<'a>(
    transformation: &'a Transformation,
    input: &[u8],
    limits: &Limits,
    ocr_models: &Path,
) -> Result<Product<'a>, Failure> {
    match transformation {
        Transformation::Image(operation) => {
            let output = spindrive_imaging::apply(input, operation, limits)?;
            Ok(Product {
                bytes: output.bytes,
                content_type: output.format.content_type(),
                extension: output.format.extension(),
                details: None,
                indexed_as: None,
            })
        }
        Transformation::Text(extraction @ TextExtraction::PdfText { .. }) => {
            let pdf_limits = spindrive_pdftext::Limits {
                max_text_bytes: limits.max_output_bytes as usize,
                max_duration: limits.max_duration,
                ..spindrive_pdftext::Limits::default()
            };
            let text = spindrive_pdftext::extract(input, pdf_limits)?;
            Ok(Product::text(text, extraction, None))
        }
        Transformation::Text(extraction @ TextExtraction::Ocr { .. }) => {
            if input.starts_with(b"%PDF-") {
                return Err(Failure::Job(PdfError::NoRasteriser.to_string()));
            }
            let page = spindrive_imaging::decode_upright(input, limits)?.to_rgb8();
            // About 20 MB of models, loaded per job: each wake-up is a fresh
            // instance running one job.
            let engine = spindrive_ocr::Engine::load(ocr_models)?;
            let options = spindrive_ocr::Options {
                latin_only: extraction.latin_only(),
                time_limit: Some(limits.max_duration),
            };
            let read = engine.read(&page, options)?;
            let details = serde_json::to_value(&read).map_err(ApiError::internal)?;
            Ok(Product::text(read.text(), extraction, Some(details)))
        }
    }
}

/// Renews the job's lease after computing; `false` if the claim was lost
/// (its source deleted, access revoked, or the lease ran out), so the
/// rest of the work is skipped.
async fn still_mine(config: &Config, settings: &TransformConfig, claim: &Claim) -> Result<bool, Failure> {
    Ok(jobs::renew(&Db::connect(config).await?, claim, settings.lease_seconds).await?)
}

/// The whole content of `file`, read chunk by chunk.
async fn read_all(config: &Config, file: &VisibleFile) -> Result<Vec<u8>, Failure> {
    let mut input = Vec::with_capacity(file.size as usize);
    let mut reader = ContentReader::new(config.clone(), file.clone(), 0, file.size as u64);
    while let Some(chunk) = reader.next().await {
        input.extend_from_slice(&chunk?);
    }
    Ok(input)
}
