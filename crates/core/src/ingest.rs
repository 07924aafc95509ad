//! File ingestion as jobs: the [`FileIngest`] trait a domain implements, running it on the
//! blocking pool as a job, spooling uploads to disk, and the routes every file-fed domain gets
//! (`POST /api/v1/<domain>/ingest`, `POST /api/v1/<domain>/uploads`, `GET /api/v1/<domain>/files`).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::TryStreamExt;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::db::DbError;
use crate::http::{ApiError, ApiQuery, Page};
use crate::jobs::{Job, JobHandle, NewJob, Summary};
use crate::Ctx;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl From<rusqlite::Error> for IngestError {
    fn from(e: rusqlite::Error) -> Self {
        IngestError::Db(DbError::Sqlite(e))
    }
}

/// A domain fed by files.
pub trait FileIngest: Send + Sync + 'static {
    /// The domain's name (inbox folder, ledger, job domain).
    fn domain(&self) -> &'static str;
    /// Whether a file (by its name) belongs to this domain's inbox.
    fn accepts(&self, path: &Path) -> bool;
    /// Ingests `files`, each atomically with its ledger entry (see [`crate::ledger`]),
    /// reporting progress in bytes on `job`. A file that cannot be used is reported in the
    /// summary; an `Err` means the job failed.
    fn ingest(&self, ctx: &Ctx, files: &[PathBuf], job: &JobHandle)
        -> Result<Summary, IngestError>;
    /// Ingests one stream (`sluice ingest <domain> -`) atomically under `name`, hashing it
    /// while reading. Domains that cannot take a stream keep the default refusal.
    fn ingest_reader(
        &self,
        _ctx: &Ctx,
        _name: &str,
        _reader: &mut (dyn std::io::BufRead + Send),
        _job: &JobHandle,
    ) -> Result<Summary, IngestError> {
        Err(IngestError::Invalid(format!(
            "the {} domain does not ingest from standard input; give file paths",
            self.domain()
        )))
    }
}

/// Creates an ingestion job for `files` (unit bytes) without starting it.
pub fn new_job(
    ctx: &Ctx,
    ingest: &dyn FileIngest,
    files: &[PathBuf],
    callback_url: Option<String>,
) -> Result<JobHandle, DbError> {
    let total = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    ctx.jobs.create(
        NewJob::new(ingest.domain(), "ingest", "bytes")
            .total(Some(total))
            .callback(callback_url),
    )
}

/// Runs a created job to its end on the current thread.
pub fn run(
    ctx: &Ctx,
    ingest: &dyn FileIngest,
    files: &[PathBuf],
    job: JobHandle,
) -> Result<Job, DbError> {
    job.run(|job| ingest.ingest(ctx, files, job))
}

/// Starts an ingestion job in the background and returns its queued snapshot at once.
/// Spooled files (under the spool folder) are removed when the job ends.
pub fn spawn(
    ctx: &Ctx,
    ingest: Arc<dyn FileIngest>,
    files: Vec<PathBuf>,
    callback_url: Option<String>,
) -> Result<Job, DbError> {
    let job = new_job(ctx, ingest.as_ref(), &files, callback_url)?;
    let snapshot = job.snapshot();
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = run(&ctx, ingest.as_ref(), &files, job) {
            tracing::error!(error = %e, "could not store the end of an ingestion job");
        }
        let spool = ctx.settings.spool_dir(ingest.domain());
        for f in &files {
            if f.starts_with(&spool) {
                let _ = std::fs::remove_file(f);
                if let Some(dir) = f.parent() {
                    let _ = std::fs::remove_dir(dir);
                }
            }
        }
    });
    Ok(snapshot)
}

/// Files in the domain's inbox that it accepts and that look complete, sorted by name.
pub fn inbox_files(ctx: &Ctx, ingest: &dyn FileIngest) -> std::io::Result<Vec<PathBuf>> {
    let dir = ctx.settings.inbox_dir(ingest.domain());
    std::fs::create_dir_all(&dir)?;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.is_file() && !crate::inbox::is_temporary(&path) && ingest.accepts(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// A file name from a client: one plain component, no traversal, no control characters.
pub fn safe_file_name(name: &str) -> Result<String, ApiError> {
    let bad = |why: &str| ApiError::bad_param("name", format!("invalid file name `{name}`: {why}"));
    if name.is_empty() || name.len() > 255 {
        return Err(bad("must be 1 to 255 bytes"));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(bad("must not contain slashes or control characters"));
    }
    let mut comps = Path::new(name).components();
    match (comps.next(), comps.next()) {
        (Some(Component::Normal(_)), None) if !name.starts_with('.') => Ok(name.to_owned()),
        _ => Err(bad("must be a plain file name")),
    }
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct IngestRequest {
    /// File names inside the domain's inbox; all inbox files when absent.
    pub files: Option<Vec<String>>,
    /// URL that receives the final job as a POST.
    pub callback_url: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct UploadParams {
    /// The file's name (it may carry meaning, e.g. a period); required for raw bodies.
    pub name: Option<String>,
    pub callback_url: Option<String>,
}

#[derive(Clone)]
struct IngestState {
    ctx: Ctx,
    ingest: Arc<dyn FileIngest>,
}

/// The generic ingestion routes of a file-fed domain.
pub fn routes(ctx: Ctx, ingest: Arc<dyn FileIngest>) -> Router {
    let d = ingest.domain();
    Router::new()
        .route(&format!("/api/v1/{d}/ingest"), post(ingest_inbox))
        // Uploads stream to disk under their own limit (`max_body_bytes`), not the small
        // default limit of buffered bodies.
        .route(
            &format!("/api/v1/{d}/uploads"),
            post(upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(&format!("/api/v1/{d}/files"), get(files))
        .with_state(IngestState { ctx, ingest })
}

fn accepted(job: Job) -> impl IntoResponse {
    let location = format!("/api/v1/jobs/{}", job.id);
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(job),
    )
}

/// Starts an ingestion of inbox files (all of them, or the named ones) as a job.
pub async fn start_inbox_job(
    ctx: &Ctx,
    ingest: Arc<dyn FileIngest>,
    names: Option<Vec<String>>,
    callback_url: Option<String>,
) -> Result<Job, ApiError> {
    let dir = ctx.settings.inbox_dir(ingest.domain());
    let files = match names {
        None => inbox_files(ctx, ingest.as_ref()).map_err(ApiError::internal)?,
        Some(names) => {
            let mut files = Vec::with_capacity(names.len());
            for n in names {
                let n = safe_file_name(&n)?;
                let p = dir.join(&n);
                if !p.is_file() {
                    return Err(ApiError::bad_param(
                        "files",
                        format!("`{n}` is not a file in the {} inbox", ingest.domain()),
                    ));
                }
                files.push(p);
            }
            files
        }
    };
    Ok(spawn(ctx, ingest, files, callback_url)?)
}

async fn ingest_inbox(
    State(s): State<IngestState>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let req: IngestRequest = if body.iter().all(u8::is_ascii_whitespace) {
        IngestRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let job = start_inbox_job(&s.ctx, s.ingest, req.files, req.callback_url).await?;
    Ok(accepted(job))
}

/// Streams a body to a fresh spool folder under its own name.
pub async fn spool_stream(
    ctx: &Ctx,
    domain: &str,
    name: &str,
    stream: impl futures::Stream<Item = Result<axum::body::Bytes, std::io::Error>> + Unpin,
) -> Result<PathBuf, ApiError> {
    let name = safe_file_name(name)?;
    let dir = ctx
        .settings
        .spool_dir(domain)
        .join(uuid::Uuid::new_v4().to_string());
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(ApiError::internal)?;
    let path = dir.join(name);
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(ApiError::internal)?;
    let mut stream = stream;
    let limit = ctx.settings.max_body_bytes;
    let mut written = 0u64;
    let result: Result<(), ApiError> = async {
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| ApiError::bad_request(format!("upload interrupted: {e}")))?
        {
            written += chunk.len() as u64;
            if written > limit {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("upload larger than the limit of {limit} bytes"),
                ));
            }
            file.write_all(&chunk).await.map_err(ApiError::internal)?;
        }
        file.flush().await.map_err(ApiError::internal)
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_dir_all(&dir).await;
        return Err(e);
    }
    Ok(path)
}

async fn upload(
    State(s): State<IngestState>,
    ApiQuery(params): ApiQuery<UploadParams>,
    req: Request,
) -> Result<impl IntoResponse, ApiError> {
    let domain = s.ingest.domain();
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let mut files = Vec::new();
    if is_multipart {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?
        {
            let Some(name) = field.file_name().map(str::to_owned) else {
                continue;
            };
            let stream = field.map_err(std::io::Error::other);
            files.push(spool_stream(&s.ctx, domain, &name, Box::pin(stream)).await?);
        }
        if files.is_empty() {
            return Err(ApiError::bad_request(
                "the multipart body has no file part (send -F file=@name.csv)",
            ));
        }
    } else {
        let name = params.name.ok_or_else(|| {
            ApiError::bad_param(
                "name",
                "a raw upload needs ?name=<file name>; or send multipart/form-data",
            )
        })?;
        let stream = Body::into_data_stream(req.into_body()).map_err(std::io::Error::other);
        files.push(spool_stream(&s.ctx, domain, &name, Box::pin(stream)).await?);
    }
    let job = spawn(&s.ctx, s.ingest.clone(), files, params.callback_url)?;
    Ok(accepted(job))
}

use axum::extract::FromRequest;

async fn files(
    State(s): State<IngestState>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<impl IntoResponse, ApiError> {
    let limit = page.limit(100, 1000)?;
    let domain = s.ingest.domain();
    let entries = s
        .ctx
        .db
        .read_async(move |c| crate::ledger::list(c, domain, limit))
        .await?;
    Ok(Json(entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_cannot_escape() {
        for bad in [
            "",
            "..",
            "../x.csv",
            "a/b.csv",
            "/etc/passwd",
            ".hidden",
            "a\\b",
            "x\ny",
        ] {
            assert!(safe_file_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            safe_file_name("ipflow_data.ts-1.1.txt").unwrap(),
            "ipflow_data.ts-1.1.txt"
        );
    }
}
