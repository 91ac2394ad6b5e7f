//! The Durable Functions HTTP management API over a running engine: start orchestrations, read
//! their status and history, answer, end, rewind, restart and purge them, and read and signal
//! entities, with Azure's routes, status codes and payloads.
//!
//! Owns the routes (under both base paths, `/runtime/webhooks/durabletask/` and the local RPC
//! base `/durabletask/` the out-of-process clients use), the access key, the body limit, how
//! an engine error becomes a status here, and the JSON shapes (`shape.rs`). It reaches the
//! engine only through [`AsyncEngineHandle`]. It knows nothing of sockets' addresses, flags or
//! the terminal: the binary binds the listener and hands it to [`serve`]. The engine does not
//! depend on this crate (its layering test forbids axum and hyper there).
//!
//! Beside Azure's routes, `private.rs` serves durable-emu's own (under [`PRIVATE_BASE`]) for the
//! `durable-emu` command line, in the engine's shapes; Azure's routes do not change for them.

mod private;
mod shape;

pub use private::{ABOUT_PATH, PRIVATE_BASE};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use durable_emu_engine::engine::{
    AsyncEngineHandle, EngineError, EntityQuery, InstanceQuery, PurgeFilter, WireKind,
};
use durable_sdk::history::RuntimeStatus;
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// The two base paths every route is served under: Azure's public webhook path and the local
/// RPC base (`rpcBaseUrl`) the out-of-process client libraries call.
pub const BASE_PATHS: [&str; 2] = ["/runtime/webhooks/durabletask", "/durabletask"];

/// The header a listing's next page is asked for and answered with (Azure's name).
pub const CONTINUATION_HEADER: &str = "x-ms-continuation-token";

/// The header that carries the access key (the query's `code=` is the other way).
pub const KEY_HEADER: &str = "x-functions-key";

/// Largest request body taken by default: generous for inputs, small enough that a runaway
/// client cannot make the emulator buffer gigabytes.
pub const DEFAULT_BODY_LIMIT: usize = 8 << 20;

/// Seconds a status poll of a running instance is told to wait (`Retry-After`). Azure says 5;
/// the emulator is local and fast, so clients that honour it should not idle that long.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// How the API is served.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// When set, every request must carry it (`code=` query parameter or `x-functions-key`
    /// header); without it the answer is 401.
    pub key: Option<String>,
    /// Largest body taken; a larger one is 413.
    pub body_limit: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            key: None,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

/// What every handler under one base path shares.
#[derive(Debug, Clone)]
struct Api {
    engine: AsyncEngineHandle,
    base: &'static str,
    key: Option<Arc<str>>,
}

/// The whole API as an axum router (no socket: tests drive it with `oneshot`).
pub fn router(engine: AsyncEngineHandle, config: HttpConfig) -> Router {
    let key: Option<Arc<str>> = config.key.map(Arc::from);
    let mut app = Router::new();
    for base in BASE_PATHS {
        let api = Api {
            engine: engine.clone(),
            base,
            key: key.clone(),
        };
        app = app.nest(base, routes().with_state(api));
    }
    app.nest(PRIVATE_BASE, private::routes(engine))
        .fallback(unknown_route)
        .layer(middleware::from_fn_with_state(key, front_door))
        .layer(DefaultBodyLimit::max(config.body_limit))
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(without_nagle(listener), app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// `listener` with Nagle's algorithm off on what it accepts, as on the gRPC listener: a response
/// written in more than one piece must not wait for the client's delayed ACK.
fn without_nagle(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt as _;
    listener.tap_io(|stream| {
        // A socket that refuses only delays its small writes.
        let _ = stream.set_nodelay(true);
    })
}

fn routes() -> Router<Api> {
    Router::new()
        .route("/orchestrators/{name}", post(start))
        .route("/orchestrators/{name}/{instance_id}", post(start_with_id))
        .route("/instances", get(list_instances).delete(purge_instances))
        // The Python client lists and purges at `instances/` (an empty instance id).
        .route("/instances/", get(list_instances).delete(purge_instances))
        .route("/instances/{id}", get(get_status).delete(purge_instance))
        .route("/instances/{id}/raiseEvent/{event}", post(raise_event))
        .route("/instances/{id}/{action}", post(instance_action))
        .route("/entities", get(list_all_entities))
        .route("/entities/{name}", get(list_named_entities))
        .route(
            "/entities/{name}/{key}",
            get(get_entity).post(signal_entity),
        )
        .fallback(unknown_route)
}

/// A refusal: its status and a JSON body with the message (`Message`, and `ExceptionMessage`,
/// which the Python client reads on a 400).
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "Message": self.message, "ExceptionMessage": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

/// The engine's own wire table (docs/architecture.md, "Errors at the wire").
pub(crate) fn engine_error(error: EngineError) -> ApiError {
    let status = StatusCode::from_u16(error.kind().http_status())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ApiError::new(status, error.to_string())
}

/// For a command on an instance, Azure answers "the instance is in the wrong state" (ended,
/// not failed, still running) with 410 Gone, which its clients expect; everything else keeps
/// the wire table's status.
fn instance_command_error(error: EngineError) -> ApiError {
    let wrong_state = matches!(error.kind(), WireKind::FailedPrecondition)
        || matches!(error, EngineError::InstanceEnded { .. });
    if wrong_state {
        ApiError::new(StatusCode::GONE, error.to_string())
    } else {
        engine_error(error)
    }
}

/// Checks the access key, and logs each request with its status and latency.
async fn front_door(State(key): State<Option<Arc<str>>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = if path != private::ABOUT_PATH
        && key
            .as_deref()
            .is_some_and(|key| !carries_key(request.headers(), request.uri(), key))
    {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!(
                "this emulator requires its access key: add ?code=KEY or the {KEY_HEADER} header"
            ),
        )
        .into_response()
    } else {
        next.run(request).await
    };
    // One line per request, read in the UI's log stream (Builds view) and its log file.
    tracing::info!(
        target: "durable_emu::http",
        "{method} {path} -> {} ({:.1} ms)",
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    response
}

fn carries_key(headers: &HeaderMap, uri: &Uri, key: &str) -> bool {
    let in_header = headers
        .get(KEY_HEADER)
        .is_some_and(|value| value.as_bytes() == key.as_bytes());
    in_header
        || Params::parse(uri)
            .map(|params| params.get("code") == Some(key))
            .unwrap_or(false)
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no endpoint {method} {}; the API lives under {} and {}",
            uri.path(),
            BASE_PATHS[0],
            BASE_PATHS[1]
        ),
    )
}

/// A request's query parameters, looked up case-insensitively as Azure does.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(uri: &Uri) -> Result<Self, ApiError> {
        Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map(|Query(pairs)| Params(pairs))
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub(crate) fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(value) if value.eq_ignore_ascii_case("true") => Ok(true),
            Some(value) if value.eq_ignore_ascii_case("false") => Ok(false),
            Some(value) => Err(ApiError::bad_request(format!(
                "{name} must be true or false, not '{value}'"
            ))),
        }
    }

    pub(crate) fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        let Some(text) = self.get(name).filter(|text| !text.is_empty()) else {
            return Ok(None);
        };
        parse_time(text).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!(
                "{name} '{text}' is not a time (use ISO 8601, e.g. 2024-05-01T12:00:00Z)"
            ))
        })
    }

    pub(crate) fn count(&self, name: &str) -> Result<Option<usize>, ApiError> {
        match self.get(name).filter(|text| !text.is_empty()) {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("{name} must be a whole number, not '{text}'"))
            }),
        }
    }

    /// `runtimeStatus=Running,Completed` (or the parameter repeated).
    pub(crate) fn statuses(&self) -> Result<Vec<RuntimeStatus>, ApiError> {
        let mut statuses = Vec::new();
        for (_, value) in self
            .0
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case("runtimeStatus"))
        {
            for name in value
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
            {
                statuses.push(
                    name.parse::<RuntimeStatus>()
                        .map_err(ApiError::bad_request)?,
                );
            }
        }
        Ok(statuses)
    }
}

/// ISO 8601 as clients write it: with an offset, or without one (taken as UTC), or a date.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    if let Ok(at) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(at.and_utc());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
}

/// A request body's bytes: one over the limit is 413.
pub(crate) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let message = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "the request body is over the emulator's size limit".to_string()
        } else {
            rejection.body_text()
        };
        ApiError::new(rejection.status(), message)
    })
}

/// A request body as JSON: `None` when empty. A body over the limit is 413, one that is not
/// JSON is 400. The Python client encodes JSON twice (a JSON string whose text is the JSON);
/// such a string is taken as the JSON inside it. A string meant as text whose content happens
/// to be JSON must therefore be sent encoded twice itself.
fn body_json(body: Result<Bytes, BytesRejection>) -> Result<Option<Value>, ApiError> {
    let bytes = body_bytes(body)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|error| ApiError::bad_request(format!("the request body is not JSON: {error}")))?;
    if let Value::String(text) = &value {
        if let Ok(inner) = serde_json::from_str::<Value>(text) {
            return Ok(Some(inner));
        }
    }
    Ok(Some(value))
}

impl Api {
    /// `http://host/base`, from the request's Host header.
    fn root(&self, headers: &HeaderMap) -> String {
        let host = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}{}", self.base)
    }

    /// The query suffix that carries the key in the URIs handed out.
    fn code(&self) -> Option<String> {
        self.key
            .as_deref()
            .map(|key| format!("code={}", shape::encode(key)))
    }

    /// 202 with `Location` and the management payload of `instance_id`.
    fn accepted(&self, headers: &HeaderMap, instance_id: &str) -> Response {
        let payload = shape::management(&self.root(headers), instance_id, self.code().as_deref());
        let mut response = (StatusCode::ACCEPTED, axum::Json(payload.clone())).into_response();
        if let Some(location) = payload["statusQueryGetUri"]
            .as_str()
            .and_then(|uri| HeaderValue::from_str(uri).ok())
        {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    }
}

async fn start(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    start_instance(api, name, None, headers, body).await
}

async fn start_with_id(
    State(api): State<Api>,
    Path((name, instance_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    start_instance(api, name, Some(instance_id), headers, body).await
}

async fn start_instance(
    api: Api,
    name: String,
    instance_id: Option<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let input = body_json(body)?.unwrap_or(Value::Null);
    let id = api
        .engine
        .start_orchestration(&name, input, instance_id)
        .await
        .map_err(|error| match error {
            // Azure answers a name it has no function for with 400.
            EngineError::UnknownOrchestration { .. } => ApiError::bad_request(error.to_string()),
            error => engine_error(error),
        })?;
    Ok(api.accepted(&headers, &id))
}

async fn get_status(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let params = Params::parse(&uri)?;
    let show_input = params.flag("showInput", true)?;
    let show_history = params.flag("showHistory", false)?;
    let show_output = params.flag("showHistoryOutput", false)?;
    let fail_as_500 = params.flag("returnInternalServerErrorOnFailure", false)?;
    let record = api
        .engine
        .instance(&id)
        .await
        .map_err(engine_error)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no instance '{id}'")))?;
    let history = if show_history {
        let executions = api.engine.history(&id).await.map_err(engine_error)?;
        let events = executions
            .last()
            .map(|execution| execution.events.as_slice())
            .unwrap_or_default();
        Some(shape::history(events, show_output))
    } else {
        None
    };
    let body = axum::Json(shape::status(&record, show_input, history));
    Ok(match record.status {
        RuntimeStatus::Completed | RuntimeStatus::Terminated | RuntimeStatus::Canceled => {
            (StatusCode::OK, body).into_response()
        }
        RuntimeStatus::Failed if fail_as_500 => {
            (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
        }
        RuntimeStatus::Failed => (StatusCode::OK, body).into_response(),
        RuntimeStatus::Pending
        | RuntimeStatus::Running
        | RuntimeStatus::Suspended
        | RuntimeStatus::ContinuedAsNew => {
            let mut response = (StatusCode::ACCEPTED, body).into_response();
            // The same query again: a client that follows Location keeps its options.
            let query = uri
                .query()
                .map(|query| format!("?{query}"))
                .unwrap_or_default();
            let location = format!(
                "{}/instances/{}{query}",
                api.root(&headers),
                shape::encode(&id)
            );
            if let Ok(location) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            response
        }
    })
}

fn continuation(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CONTINUATION_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .map(str::to_string)
}

fn with_continuation(mut response: Response, next: Option<String>) -> Response {
    if let Some(value) = next.and_then(|next| HeaderValue::from_str(&next).ok()) {
        response.headers_mut().insert(CONTINUATION_HEADER, value);
    }
    response
}

async fn list_instances(
    State(api): State<Api>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let params = Params::parse(&uri)?;
    let show_input = params.flag("showInput", true)?;
    let query = InstanceQuery {
        statuses: params.statuses()?,
        created_from: params.time("createdTimeFrom")?,
        created_to: params.time("createdTimeTo")?,
        instance_id_prefix: params
            .get("instanceIdPrefix")
            .filter(|prefix| !prefix.is_empty())
            .map(str::to_string),
        page_size: params.count("top")?.unwrap_or(0),
        continuation: continuation(&headers),
    };
    let (records, next) = api.engine.query(query).await.map_err(engine_error)?;
    let body: Vec<Value> = records
        .iter()
        .map(|record| shape::status(record, show_input, None))
        .collect();
    Ok(with_continuation(
        (StatusCode::OK, axum::Json(Value::Array(body))).into_response(),
        next,
    ))
}

fn deleted(count: usize, what: &str) -> Result<Response, ApiError> {
    if count == 0 {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{what}: nothing to delete"),
        ));
    }
    Ok((
        StatusCode::OK,
        axum::Json(json!({ "instancesDeleted": count })),
    )
        .into_response())
}

async fn purge_instance(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let count = api
        .engine
        .purge_recursive(&id, false)
        .await
        .map_err(instance_command_error)?;
    deleted(count, &format!("no instance '{id}'"))
}

async fn purge_instances(State(api): State<Api>, uri: Uri) -> Result<Response, ApiError> {
    let params = Params::parse(&uri)?;
    let filter = PurgeFilter {
        created_from: params.time("createdTimeFrom")?,
        created_to: params.time("createdTimeTo")?,
        statuses: params.statuses()?,
    };
    let count = api
        .engine
        .purge_where(filter, false)
        .await
        .map_err(engine_error)?;
    deleted(count, "no ended instance matches")
}

async fn raise_event(
    State(api): State<Api>,
    Path((id, event)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let data = body_json(body)?.unwrap_or(Value::Null);
    api.engine
        .raise_event(&id, &event, data)
        .await
        .map_err(instance_command_error)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn instance_action(
    State(api): State<Api>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let params = Params::parse(&uri)?;
    // The commands take their reason from the query; a body is allowed but must be JSON.
    body_json(body)?;
    let reason = params.get("reason").map(str::to_string);
    let engine = &api.engine;
    match action.as_str() {
        // `recursive` is durable-emu's extension (Azure's HTTP API has no such parameter): it
        // also terminates the instance's running sub-orchestrations.
        "terminate" => engine
            .terminate(
                &id,
                reason.map_or(Value::Null, Value::String),
                params.flag("recursive", false)?,
            )
            .await
            .map_err(instance_command_error)?,
        "suspend" => engine
            .suspend(&id, reason)
            .await
            .map_err(instance_command_error)?,
        "resume" => engine
            .resume(&id, reason)
            .await
            .map_err(instance_command_error)?,
        "rewind" => engine
            .rewind(&id, reason)
            .await
            .map_err(instance_command_error)?,
        "restart" => {
            let new_id = params.flag("restartWithNewInstanceId", true)?;
            let restarted = engine
                .restart_as(&id, new_id)
                .await
                .map_err(instance_command_error)?;
            return Ok(api.accepted(&headers, &restarted));
        }
        _ => return Err(unknown_route(Method::POST, uri).await),
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `@name@key`, the entity's instance id (the engine keeps names lower-cased).
fn entity_id(name: &str, key: &str) -> String {
    format!("@{}@{key}", name.to_lowercase())
}

async fn list_entities(
    api: Api,
    prefix: Option<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let params = Params::parse(&uri)?;
    let query = EntityQuery {
        instance_id_starts_with: prefix,
        last_modified_from: params.time("lastOperationTimeFrom")?,
        last_modified_to: params.time("lastOperationTimeTo")?,
        include_state: params.flag("fetchState", false)?,
        include_transient: false,
        page_size: params.count("top")?,
        continuation_token: continuation(&headers),
    };
    let (entities, next) = api.engine.entities(query).await.map_err(engine_error)?;
    let body: Vec<Value> = entities.iter().map(shape::entity).collect();
    Ok(with_continuation(
        (StatusCode::OK, axum::Json(Value::Array(body))).into_response(),
        next,
    ))
}

async fn list_all_entities(
    State(api): State<Api>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    list_entities(api, None, headers, uri).await
}

async fn list_named_entities(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    list_entities(
        api,
        Some(format!("@{}@", name.to_lowercase())),
        headers,
        uri,
    )
    .await
}

async fn get_entity(
    State(api): State<Api>,
    Path((name, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = entity_id(&name, &key);
    let metadata = api.engine.entity(&id, true).await.map_err(engine_error)?;
    match metadata.and_then(|metadata| metadata.state) {
        Some(state) => Ok((StatusCode::OK, axum::Json(state)).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("entity '{id}' has no state"),
        )),
    }
}

async fn signal_entity(
    State(api): State<Api>,
    Path((name, key)): Path<(String, String)>,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let params = Params::parse(&uri)?;
    let input = body_json(body)?.unwrap_or(Value::Null);
    let operation = params
        .get("op")
        .filter(|op| !op.is_empty())
        .ok_or_else(|| ApiError::bad_request("name the operation with ?op=NAME"))?
        .to_string();
    api.engine
        .signal_entity(&entity_id(&name, &key), &operation, input, None)
        .await
        .map_err(engine_error)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener as _;

    #[tokio::test]
    async fn accepted_connections_send_small_writes_at_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = without_nagle(listener).accept().await;
        assert!(accepted.nodelay().unwrap());
    }
}
