//! File ingestion as jobs: the [`FileIngest`] trait a domain implements, running it on the
//! blocking pool as a job, spooling uploads to disk, and the routes every file-fed domain gets
//! (`POST /api/v1/<domain>/ingest`, `POST /api/v1/<domain>/uploads`, `GET /api/v1/<domain>/files`).

use std::path::{Path, PathBuf};
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
use crate::http::{ApiError, ApiQuery, Page, ProblemDoc};
use crate::jobs::{Job, JobHandle, NewJob, Summary};
use crate::ledger::LedgerEntry;
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

/// The file names a client may give, as the OpenAPI document states them: portable
/// characters only, so a name can never be a path, hidden, or ambiguous on any file system.
pub const FILE_NAME_PATTERN: &str = r"^[A-Za-z0-9_][A-Za-z0-9._ ()+,=@-]{0,254}$";

/// A file name from a client: one plain component of portable characters (see
/// [`FILE_NAME_PATTERN`]), no traversal, at most 255 bytes.
pub fn safe_file_name(name: &str) -> Result<String, ApiError> {
    let bad = |why: &str| {
        ApiError::bad_param(
            "name",
            format!("invalid file name `{}`: {why}", name.escape_debug()),
        )
    };
    if name.is_empty() || name.len() > 255 {
        return Err(bad("must be 1 to 255 characters"));
    }
    let portable = |c: char| c.is_ascii_alphanumeric() || "._ ()+,=@-".contains(c);
    let first = name.chars().next().expect("not empty");
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Err(bad("must start with a letter, a digit or `_`"));
    }
    if !name.chars().all(portable) {
        return Err(bad(
            "may only contain letters, digits, spaces and `._()+,=@-` (no slashes)",
        ));
    }
    Ok(name.to_owned())
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    /// File names inside the domain's inbox; all inbox files when absent.
    #[schema(schema_with = file_names_schema)]
    pub files: Option<Vec<String>>,
    /// URL that receives the final job as a POST.
    #[schema(schema_with = crate::http::nullable_http_url_schema)]
    pub callback_url: Option<String>,
}

/// OpenAPI schema of a file name checked by [`safe_file_name`].
pub fn file_name_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .pattern(Some(FILE_NAME_PATTERN))
        .build()
}

fn file_names_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(
            [Type::Array, Type::Null]
                .into_iter()
                .collect::<SchemaType>(),
        )
        .items(file_name_schema())
        .build()
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// The file's name (it may carry meaning, e.g. a period). Required for raw bodies; a
    /// multipart part's own file name takes precedence.
    #[param(schema_with = file_name_schema)]
    pub name: Option<String>,
    /// URL that receives the final job as a POST.
    #[param(schema_with = crate::http::http_url_schema)]
    pub callback_url: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilesParams {
    /// At most this many entries, newest first (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
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
    let callback_url = callback_url
        .map(|u| crate::http::http_url("callback_url", &u))
        .transpose()?;
    let dir = ctx.settings.inbox_dir(ingest.domain());
    let files = match names {
        None => inbox_files(ctx, ingest.as_ref()).map_err(ApiError::internal)?,
        Some(names) => {
            let mut files = Vec::with_capacity(names.len());
            for n in names {
                let n = safe_file_name(&n)?;
                let p = dir.join(&n);
                if !p.is_file() {
                    let mut e = ApiError::not_found(format!(
                        "`{n}` is not a file in the {} inbox",
                        ingest.domain()
                    ));
                    e.param = Some("files".to_owned());
                    return Err(e);
                }
                files.push(p);
            }
            files
        }
    };
    Ok(spawn(ctx, ingest, files, callback_url)?)
}

/// The documented 507 of the routes that write (the job row, the spooled upload).
const STORAGE_FULL_DOC: &str =
    "the disk is full, or the database reached `max_db_bytes`; nothing of the request was kept";

/// Ingests inbox files as a job: all files of the domain's inbox, or the named ones.
#[utoipa::path(post, path = "/api/v1/{domain}/ingest", tag = "{domain}",
    request_body(content = Option<IngestRequest>, content_type = "application/json",
        description = "optional: which inbox files, and a callback URL"),
    responses(
        (status = 202, description = "the job, queued; `Location` is its URL", body = Job,
            headers(("Location" = String, description = "the job's URL"))),
        (status = 400, description = "a bad parameter or body; `param` names it",
            body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "a token is configured and missing or wrong",
            body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "a named file is not in the inbox",
            body = ProblemDoc, content_type = "application/problem+json"),
        (status = 507, description = STORAGE_FULL_DOC,
            body = ProblemDoc, content_type = "application/problem+json")))]
async fn ingest_inbox(
    State(s): State<IngestState>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    // No body, or `null`: all inbox files, no callback.
    let req: IngestRequest = crate::http::optional_json_object(&body)?;
    let job = start_inbox_job(&s.ctx, s.ingest, req.files, req.callback_url).await?;
    Ok(accepted(job))
}

/// Removes whatever a previous server process left in a domain's spool (uploads whose job
/// never ran to its end). Only for a process that serves the data directory alone.
pub fn sweep_spool(ctx: &Ctx, domain: &str) -> std::io::Result<usize> {
    let dir = ctx.settings.spool_dir(domain);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
        removed += 1;
    }
    Ok(removed)
}

/// Removes spooled uploads with their folders.
async fn discard_spooled(files: &[PathBuf]) {
    for f in files {
        if let Some(dir) = f.parent() {
            let _ = tokio::fs::remove_dir_all(dir).await;
        }
    }
}

/// What is left of a request's upload limit, shared by all its parts.
pub struct UploadBudget {
    limit: u64,
    used: u64,
}

impl UploadBudget {
    pub fn new(limit: u64) -> Self {
        UploadBudget { limit, used: 0 }
    }
    fn take(&mut self, n: u64) -> Result<(), ApiError> {
        self.used = self.used.saturating_add(n);
        if self.used > self.limit {
            return Err(too_large(self.limit));
        }
        Ok(())
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("upload larger than the limit of {limit} bytes (all files of a request together; setting max_body_bytes)"),
    )
}

/// Streams a body to a fresh spool folder under its own name, charging `budget`.
pub async fn spool_stream(
    ctx: &Ctx,
    domain: &str,
    name: &str,
    stream: impl futures::Stream<Item = Result<axum::body::Bytes, std::io::Error>> + Unpin,
    budget: &mut UploadBudget,
) -> Result<PathBuf, ApiError> {
    let name = safe_file_name(name)?;
    let dir = ctx
        .settings
        .spool_dir(domain)
        .join(uuid::Uuid::new_v4().to_string());
    // A full disk is a 507 naming the condition, any other spool failure a 500.
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(ApiError::storage)?;
    let path = dir.join(name);
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(ApiError::storage)?;
    let mut stream = stream;
    let result: Result<(), ApiError> = async {
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| ApiError::bad_request(format!("upload interrupted: {e}")))?
        {
            budget.take(chunk.len() as u64)?;
            file.write_all(&chunk).await.map_err(ApiError::storage)?;
        }
        file.flush().await.map_err(ApiError::storage)
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_dir_all(&dir).await;
        return Err(e);
    }
    Ok(path)
}

/// The content types of a raw (not multipart) upload body.
const RAW_UPLOAD_TYPES: [&str; 5] = [
    "application/octet-stream",
    "text/csv",
    "text/plain",
    "application/gzip",
    "application/x-gzip",
];

/// A raw upload body (documentation of the body only).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct RawFile(pub Vec<u8>);

/// The multipart form of an upload (documentation of the body only; parts are streamed).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UploadForm {
    /// One or more file parts; each is ingested under its own file name.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Uploads files (multipart parts, or one raw body) and ingests them as one job. Bodies
/// stream to disk under the `max_body_bytes` limit.
#[utoipa::path(post, path = "/api/v1/{domain}/uploads", tag = "{domain}", params(UploadParams),
    request_body(content(
        (UploadForm = "multipart/form-data"),
        (RawFile = "application/octet-stream"),
        (RawFile = "text/csv"),
        (RawFile = "text/plain"),
        (RawFile = "application/gzip")),
        description = "the file(s)"),
    responses(
        (status = 202, description = "the job, queued; `Location` is its URL", body = Job,
            headers(("Location" = String, description = "the job's URL"))),
        (status = 413, description = "larger than `max_body_bytes`", body = ProblemDoc,
            content_type = "application/problem+json"),
        (status = 415, description = "not multipart/form-data nor a raw file type",
            body = ProblemDoc, content_type = "application/problem+json"),
        (status = 400, description = "a bad parameter or body; `param` names it",
            body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "a token is configured and missing or wrong",
            body = ProblemDoc, content_type = "application/problem+json"),
        (status = 507, description = STORAGE_FULL_DOC,
            body = ProblemDoc, content_type = "application/problem+json")))]
async fn upload(
    State(s): State<IngestState>,
    ApiQuery(params): ApiQuery<UploadParams>,
    req: Request,
) -> Result<impl IntoResponse, ApiError> {
    let callback_url = params
        .callback_url
        .map(|u| crate::http::http_url("callback_url", &u))
        .transpose()?;
    let domain = s.ingest.domain();
    // Like standard input in the CLI, an unnamed upload gets a unique name of its own.
    let default_name = || {
        params.name.clone().unwrap_or_else(|| {
            format!("upload-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"))
        })
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let is_multipart = media_type == "multipart/form-data";
    if !is_multipart && !RAW_UPLOAD_TYPES.contains(&media_type.as_str()) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "an upload is multipart/form-data or a raw body of type {}; got `{}`",
                RAW_UPLOAD_TYPES.join(", "),
                content_type.escape_debug()
            ),
        ));
    }
    let limit = s.ctx.settings.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let mut budget = UploadBudget::new(limit);
    let mut files = Vec::new();
    // On any refusal, nothing of the request stays in the spool.
    let spooled = spool_request(
        &s.ctx,
        domain,
        req,
        is_multipart,
        default_name,
        &mut budget,
        &mut files,
    )
    .await;
    if let Err(e) = spooled {
        discard_spooled(&files).await;
        return Err(e);
    }
    match spawn(&s.ctx, s.ingest.clone(), files.clone(), callback_url) {
        Ok(job) => Ok(accepted(job)),
        Err(e) => {
            discard_spooled(&files).await;
            Err(e.into())
        }
    }
}

/// Spools every file of an upload request into `files`, as far as it gets.
async fn spool_request(
    ctx: &Ctx,
    domain: &str,
    req: Request,
    is_multipart: bool,
    default_name: impl Fn() -> String,
    budget: &mut UploadBudget,
    files: &mut Vec<PathBuf>,
) -> Result<(), ApiError> {
    if !is_multipart {
        let stream = Body::into_data_stream(req.into_body()).map_err(std::io::Error::other);
        files.push(spool_stream(ctx, domain, &default_name(), Box::pin(stream), budget).await?);
        return Ok(());
    }
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|e| ApiError::bad_request(e.body_text()))?;
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(e.body_text()))?
    {
        if field.name() != Some("file") {
            return Err(ApiError::bad_request(format!(
                "unexpected form field `{}`: send each file as a `file` part (-F file=@name.csv)",
                field.name().unwrap_or("").escape_debug()
            )));
        }
        let name = field
            .file_name()
            .map(str::to_owned)
            .unwrap_or_else(&default_name);
        let stream = field.map_err(std::io::Error::other);
        files.push(spool_stream(ctx, domain, &name, Box::pin(stream), budget).await?);
    }
    if files.is_empty() {
        return Err(ApiError::bad_request(
            "the multipart body has no file part (send -F file=@name.csv)",
        ));
    }
    Ok(())
}

use axum::extract::FromRequest;

/// The domain's ingested inputs, newest first.
#[utoipa::path(get, path = "/api/v1/{domain}/files", tag = "{domain}", params(FilesParams),
    responses((status = 200, body = [LedgerEntry]),
        (status = 400, description = "bad parameter", body = ProblemDoc,
            content_type = "application/problem+json")))]
async fn files(
    State(s): State<IngestState>,
    ApiQuery(p): ApiQuery<FilesParams>,
) -> Result<impl IntoResponse, ApiError> {
    let limit = Page {
        limit: p.limit,
        offset: None,
    }
    .limit(100, 1000)?;
    let domain = s.ingest.domain();
    let db = s.ctx.db.clone();
    let entries = tokio::task::spawn_blocking(move || crate::ledger::entries(&db, domain, limit))
        .await
        .map_err(|e| DbError::Task(e.to_string()))??;
    Ok(Json(entries))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(ingest_inbox, upload, files),
    components(schemas(Job, LedgerEntry, IngestRequest, UploadForm, RawFile, ProblemDoc))
)]
struct IngestApi;

/// The OpenAPI description of the generic routes of `domain` (written once with a `{domain}`
/// placeholder, stated here with the domain's name in every path and tag).
pub fn openapi(domain: &str) -> utoipa::openapi::OpenApi {
    let mut doc = <IngestApi as utoipa::OpenApi>::openapi();
    let paths = std::mem::take(&mut doc.paths.paths);
    for (path, mut item) in paths {
        for op in [&mut item.get, &mut item.post].into_iter().flatten() {
            op.tags = Some(vec![domain.to_owned()]);
            if let Some(id) = &op.operation_id {
                op.operation_id = Some(format!("{domain}_{id}"));
            }
        }
        doc.paths
            .paths
            .insert(path.replace("{domain}", domain), item);
    }
    doc
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
