//! durable-emu's own routes, beside Azure's, under [`PRIVATE_BASE`] (`/durable-emu/v1`): what
//! the `durable-emu` command line needs from a running emulator so that it prints exactly what
//! it prints when it opens the database itself.
//!
//! Azure's API answers in Azure's shapes (times to the second, no execution id or parent, only
//! the current execution's history, no export). These routes answer in the engine's own shapes
//! (`durable_emu_engine::export::InstanceStatus` and `InstanceExport`, the engine's entity
//! records), serialized as the CLI's database path serializes them, so the two paths agree byte
//! for byte. They are not a public API: the CLI of the same build is their only client, and
//! they may change with it (hence the version in the path).
//!
//! Owns these routes and their parameters; shares the access key, the body limit, the error
//! body and the engine's error table with Azure's routes (`lib.rs`). Knows nothing of the
//! command line or of how the output is printed.

use crate::{ApiError, Params, body_bytes, engine_error};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use durable_emu_engine::clock::parse_duration;
use durable_emu_engine::engine::{AsyncEngineHandle, EntityQuery};
use durable_emu_engine::export::{InstanceExport, InstanceStatus};
use durable_sdk::EntityId;
use serde_json::{Value, json};

/// Where the private routes live (not under Azure's base paths: no Azure client calls them).
pub const PRIVATE_BASE: &str = "/durable-emu/v1";

/// Who answers here: `{"product": "durable-emu", "version", "pid"}`. Open without the access
/// key (it says nothing about the data), so a command can tell that the emulator an endpoint
/// file names is the one still listening, not another program that took its port since.
pub const ABOUT_PATH: &str = "/durable-emu/v1/about";

async fn about() -> Response {
    axum::Json(json!({
        "product": "durable-emu",
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
    }))
    .into_response()
}

/// How many operations of an entity's log `GET entities/{id}` answers when not told.
const DEFAULT_OPERATIONS: usize = 100;

/// Entities read per page while answering a listing (the whole listing is one answer).
const ENTITY_PAGE: usize = 500;

/// The private routes, relative to [`PRIVATE_BASE`].
pub(crate) fn routes(engine: AsyncEngineHandle) -> Router {
    Router::new()
        .route("/about", get(about))
        .route("/instances", get(list_instances))
        .route("/instances/{id}", get(instance_status))
        .route("/instances/{id}/export", get(export_instance))
        .route("/import", post(import_instance))
        .route("/entities", get(list_entities))
        .route("/entities/{id}", get(get_entity))
        .route("/entities/{id}/signal", post(signal_entity))
        .with_state(engine)
}

fn no_instance(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no instance '{id}'"))
}

/// `GET instances[?runtimeStatus=A,B]`: every instance (of those statuses), newest first, as
/// `InstanceStatus` without history.
async fn list_instances(
    State(engine): State<AsyncEngineHandle>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let params = Params::parse(&uri)?;
    let statuses = params.statuses()?;
    let records = engine.instances().await.map_err(engine_error)?;
    let body: Vec<InstanceStatus> = records
        .iter()
        .filter(|record| statuses.is_empty() || statuses.contains(&record.status))
        .map(|record| InstanceStatus::from_record(record, None))
        .collect();
    Ok(axum::Json(body).into_response())
}

/// `GET instances/{id}[?history=true]`: the instance's `InstanceStatus`, with every
/// execution's history when asked; 200 whatever its status (the status says whether it ended).
async fn instance_status(
    State(engine): State<AsyncEngineHandle>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let params = Params::parse(&uri)?;
    let with_history = params.flag("history", false)?;
    let record = engine
        .instance(&id)
        .await
        .map_err(engine_error)?
        .ok_or_else(|| no_instance(&id))?;
    let history = if with_history {
        Some(engine.history(&id).await.map_err(engine_error)?)
    } else {
        None
    };
    let status = InstanceStatus::from_record(&record, history.as_deref());
    Ok(axum::Json(status).into_response())
}

/// `GET instances/{id}/export`: the instance as `durable-emu export` writes it.
async fn export_instance(
    State(engine): State<AsyncEngineHandle>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = engine
        .instance(&id)
        .await
        .map_err(engine_error)?
        .ok_or_else(|| no_instance(&id))?;
    let executions = engine.history(&id).await.map_err(engine_error)?;
    Ok(axum::Json(InstanceExport::new(&record, &executions)).into_response())
}

/// `POST import` with an export as the body: 201 with `{"instanceId": ...}`; a body that is not
/// an export is 400, and a refused import (an invalid history, an id in use) changes nothing.
async fn import_instance(
    State(engine): State<AsyncEngineHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body_bytes(body)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::bad_request("the export is not UTF-8 text"))?;
    let export = InstanceExport::parse(text).map_err(ApiError::bad_request)?;
    let instance_id = engine.import(export).await.map_err(engine_error)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "instanceId": instance_id })),
    )
        .into_response())
}

/// The entity id of a path segment, as the engine spells it (`@Counter@a` is `@counter@a`).
fn entity_id(text: &str) -> Result<String, ApiError> {
    text.parse::<EntityId>()
        .map(|id| id.to_string())
        .map_err(|error| ApiError::bad_request(error.to_string()))
}

/// `GET entities[?prefix=P][&state=true]`: every entity (whose id starts with P), ordered by
/// id, transient ones included, with state when asked; one answer, no pages.
async fn list_entities(
    State(engine): State<AsyncEngineHandle>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let params = Params::parse(&uri)?;
    let mut query = EntityQuery {
        instance_id_starts_with: params
            .get("prefix")
            .filter(|prefix| !prefix.is_empty())
            .map(str::to_string),
        include_state: params.flag("state", false)?,
        include_transient: true,
        page_size: Some(ENTITY_PAGE),
        ..EntityQuery::default()
    };
    let mut entities = Vec::new();
    loop {
        let (page, next) = engine.entities(query.clone()).await.map_err(engine_error)?;
        entities.extend(page);
        match next {
            Some(token) => query.continuation_token = Some(token),
            None => break,
        }
    }
    Ok(axum::Json(entities).into_response())
}

/// `GET entities/{id}[?operations=N]`: `{"entity": ..., "operations": [...]}`, the entity with
/// its state and the last N entries of its operation log; 404 when it does not exist.
async fn get_entity(
    State(engine): State<AsyncEngineHandle>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let params = Params::parse(&uri)?;
    let id = entity_id(&id)?;
    let limit = params.count("operations")?.unwrap_or(DEFAULT_OPERATIONS);
    // The log first: the entity read after it is at least as new, so an operation found in the
    // log shows in the state answered with it (what `entity signal` waits for).
    let operations = engine
        .entity_operations(&id, limit)
        .await
        .map_err(engine_error)?;
    let entity = engine
        .entity(&id, true)
        .await
        .map_err(engine_error)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no entity '{id}'")))?;
    Ok(axum::Json(json!({ "entity": entity, "operations": operations })).into_response())
}

/// `POST entities/{id}/signal?op=NAME[&at=TIME | &after=DURATION]` with the operation's input
/// as the body (plain JSON, empty for null): 202 with `{"requestId", "scheduledTime"}`. `after`
/// counts from the emulator's clock.
async fn signal_entity(
    State(engine): State<AsyncEngineHandle>,
    Path(id): Path<String>,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let params = Params::parse(&uri)?;
    let id = entity_id(&id)?;
    let operation = params
        .get("op")
        .filter(|op| !op.is_empty())
        .ok_or_else(|| ApiError::bad_request("name the operation with ?op=NAME"))?
        .to_string();
    // Unlike Azure's routes, the body is taken as it is: a JSON string stays a string.
    let bytes = body_bytes(body)?;
    let input = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|error| {
            ApiError::bad_request(format!("the request body is not JSON: {error}"))
        })?
    };
    let scheduled = scheduled_time(&engine, &params).await?;
    let request_id = engine
        .signal_entity(&id, &operation, input, scheduled)
        .await
        .map_err(engine_error)?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({ "requestId": request_id, "scheduledTime": scheduled })),
    )
        .into_response())
}

/// `at` (a time) or `after` (a duration from the emulator's now); neither: now.
async fn scheduled_time(
    engine: &AsyncEngineHandle,
    params: &Params,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let after = params.get("after").filter(|after| !after.is_empty());
    match (params.time("at")?, after) {
        (Some(_), Some(_)) => Err(ApiError::bad_request("give at or after, not both")),
        (Some(at), None) => Ok(Some(at)),
        (None, Some(after)) => {
            let by = parse_duration(after).map_err(ApiError::bad_request)?;
            let by = chrono::Duration::from_std(by)
                .map_err(|_| ApiError::bad_request(format!("after '{after}' is too long")))?;
            let now = engine.now().await.map_err(engine_error)?;
            Ok(Some(now + by))
        }
        (None, None) => Ok(None),
    }
}
