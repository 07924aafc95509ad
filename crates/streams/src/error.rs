//! The domain's errors: what went wrong in words a user can act on.

use std::path::PathBuf;

use sluice_core::{ApiError, DbError};

use crate::parse::Stream;

#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("the source refused the credentials for {stream} (HTTP {status} from {url}); check --user and --password")]
    Refused {
        stream: Stream,
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("the source rejected the request for {stream} (HTTP {status} from {url})")]
    Rejected {
        stream: Stream,
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("cannot reach the source of {stream} at {url}: {detail}")]
    Unreachable {
        stream: Stream,
        url: String,
        detail: String,
    },
    #[error("HTTP client: {0}")]
    Client(String),
    #[error("invalid {param}: {detail}")]
    BadArg { param: String, detail: String },
    #[error("cannot read the replay folder {path}: {detail}")]
    Replay { path: PathBuf, detail: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the harvest failed: {0}")]
    HarvestFailed(String),
}

impl StreamsError {
    pub fn bad_arg(param: &str, detail: impl Into<String>) -> Self {
        StreamsError::BadArg {
            param: param.to_owned(),
            detail: detail.into(),
        }
    }
}

impl From<StreamsError> for ApiError {
    fn from(e: StreamsError) -> Self {
        match e {
            StreamsError::BadArg { param, detail } => ApiError::bad_param(&param, detail),
            other => ApiError::internal(other),
        }
    }
}
