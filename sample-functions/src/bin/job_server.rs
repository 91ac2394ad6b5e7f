//! `job-server`: the tiny jobs API the `HttpJobWorkflow` sample calls (the async HTTP API
//! pattern's server side), std only.
//!
//! ```text
//! cargo run -p sample-functions --bin job-server -- [--port 8088] [--polls 2]
//! ```
//!
//! Listens on 127.0.0.1 only (`--port 0`: any free port) and prints
//! `job-server listening on http://127.0.0.1:PORT` as its first line. Routes:
//! - `POST /jobs` (a JSON object: the job) -> `202 Accepted`, `Location: /jobs/{id}`,
//!   `Retry-After: 1`, body `{"id":"{id}"}`.
//! - `GET /jobs/{id}` -> `202` with the same `Location` and `Retry-After` for the first `--polls`
//!   polls of that job, then `200 {"id":"{id}","state":"Completed","polls":N,"job":<the job>}`.
//!   Polls are counted, not timed: under durable-emu's virtual clock the 1 s waits take no time.
//! - `POST /notify` (any JSON) -> `200 {"received":true}`.
//! - `GET /stats` -> `200` and what was asked so far:
//!   `{"requests":..,"submitted":..,"status_polls":..,"notified":..}` (`/stats` itself is not
//!   counted), so a test can see that replaying an orchestration called nothing again.
//!
//! Anything else is 404 (unknown path), 405 (wrong method), 400 (a job that is not a JSON object)
//! or 413 (a body over 1 MiB). Every request is logged to stderr. Owns nothing but this demo
//! API; knows nothing of durable-emu.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Largest request body taken.
const BODY_LIMIT: usize = 1 << 20;
/// How long a connection may stay silent before it is dropped.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Seconds a client is told to wait between polls.
const RETRY_AFTER_SECONDS: u32 = 1;

const USAGE: &str = "usage: job-server [--port PORT] [--polls K]
  --port PORT  listen on 127.0.0.1:PORT (default 8088; 0 picks a free port)
  --polls K    answer 202 to the first K status polls of each job, then 200 (default 2)";

/// What the command line asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Options {
    port: u16,
    polls: u32,
}

fn parse_options(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        port: 8088,
        polls: 2,
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--port" => {
                let text = value("--port")?;
                options.port = text
                    .parse()
                    .map_err(|_| format!("--port takes a port number (0-65535), not '{text}'"))?;
            }
            "--polls" => {
                let text = value("--polls")?;
                options.polls = text
                    .parse()
                    .map_err(|_| format!("--polls takes a count, not '{text}'"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(problem) if problem.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("job-server: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(("127.0.0.1", options.port)) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "job-server: cannot listen on 127.0.0.1:{}: {error}; pick another with --port",
                options.port
            );
            return ExitCode::FAILURE;
        }
    };
    let address = match listener.local_addr() {
        Ok(address) => address,
        Err(error) => {
            eprintln!("job-server: cannot read the address it listens on: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("job-server listening on http://{address}");
    // The first line is how a script or a test learns the port: make sure it is out.
    let _ = std::io::stdout().flush();
    let jobs = Arc::new(Mutex::new(Jobs::new(options.polls)));
    for connection in listener.incoming() {
        match connection {
            Ok(stream) => {
                let jobs = Arc::clone(&jobs);
                std::thread::spawn(move || serve_connection(stream, &jobs));
            }
            Err(error) => eprintln!("job-server: a connection failed to open: {error}"),
        }
    }
    ExitCode::SUCCESS
}

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    body: String,
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Response {
    fn json(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    fn error(status: u16, message: &str) -> Self {
        Self::json(status, format!("{{\"error\":{}}}", json_string(message)))
    }

    fn accepted(id: u64, body: String) -> Self {
        Self {
            status: 202,
            headers: vec![
                ("Location", format!("/jobs/{id}")),
                ("Retry-After", RETRY_AFTER_SECONDS.to_string()),
            ],
            body,
        }
    }
}

/// The server's state: the jobs and the counters `/stats` reports.
#[derive(Debug)]
struct Jobs {
    /// 202 answers each job gets before its 200.
    polls_before_done: u32,
    next_id: u64,
    /// Each job's body and how many status polls it was asked.
    jobs: BTreeMap<u64, (String, u32)>,
    requests: u64,
    submitted: u64,
    status_polls: u64,
    notified: u64,
}

impl Jobs {
    fn new(polls_before_done: u32) -> Self {
        Self {
            polls_before_done,
            next_id: 1,
            jobs: BTreeMap::new(),
            requests: 0,
            submitted: 0,
            status_polls: 0,
            notified: 0,
        }
    }

    /// The answer to `request`, counting it.
    fn handle(&mut self, request: &Request) -> Response {
        let path = request.path.split('?').next().unwrap_or_default();
        if path == "/stats" {
            return self.stats(request);
        }
        self.requests += 1;
        match (request.method.as_str(), path) {
            ("POST", "/jobs") => self.submit(&request.body),
            (_, "/jobs") => Response::error(405, "use POST /jobs"),
            ("POST", "/notify") => {
                self.notified += 1;
                Response::json(200, "{\"received\":true}")
            }
            (_, "/notify") => Response::error(405, "use POST /notify"),
            (method, path) => match path.strip_prefix("/jobs/") {
                Some(id) if method == "GET" => self.poll(id),
                Some(_) => Response::error(405, "use GET /jobs/{id}"),
                None => Response::error(404, &format!("no route {path}")),
            },
        }
    }

    fn submit(&mut self, body: &str) -> Response {
        let job = body.trim();
        if !(job.starts_with('{') && job.ends_with('}')) {
            return Response::error(400, "the job must be a JSON object");
        }
        let id = self.next_id;
        self.next_id += 1;
        self.submitted += 1;
        self.jobs.insert(id, (job.to_string(), 0));
        Response::accepted(id, format!("{{\"id\":\"{id}\"}}"))
    }

    fn poll(&mut self, id: &str) -> Response {
        let Some((id, (job, polls))) = id
            .parse::<u64>()
            .ok()
            .and_then(|id| Some((id, self.jobs.get_mut(&id)?)))
        else {
            return Response::error(404, &format!("no job {id}"));
        };
        self.status_polls += 1;
        *polls += 1;
        if *polls <= self.polls_before_done {
            return Response::accepted(id, format!("{{\"id\":\"{id}\",\"state\":\"Running\"}}"));
        }
        Response::json(
            200,
            format!("{{\"id\":\"{id}\",\"state\":\"Completed\",\"polls\":{polls},\"job\":{job}}}"),
        )
    }

    fn stats(&self, request: &Request) -> Response {
        if request.method != "GET" {
            return Response::error(405, "use GET /stats");
        }
        Response::json(
            200,
            format!(
                "{{\"requests\":{},\"submitted\":{},\"status_polls\":{},\"notified\":{}}}",
                self.requests, self.submitted, self.status_polls, self.notified
            ),
        )
    }
}

/// A JSON string literal of `text`.
fn json_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if u32::from(c) < 0x20 => quoted.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Answers one request on `stream` and closes it (`Connection: close` keeps the server simple).
fn serve_connection(stream: TcpStream, jobs: &Mutex<Jobs>) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let response = match read_request(&stream) {
        Ok(request) => {
            let response = jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .handle(&request);
            eprintln!("{} {} -> {}", request.method, request.path, response.status);
            response
        }
        Err(response) => response,
    };
    if let Err(error) = write_response(&stream, &response) {
        eprintln!("job-server: could not answer: {error}");
    }
}

/// Reads a request, or the error answer for one that cannot be read.
fn read_request(stream: &TcpStream) -> Result<Request, Response> {
    let bad = |message: &str| Response::error(400, message);
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|_| bad("no request line"))?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(bad("the request line is not METHOD PATH VERSION"));
    };
    let (method, path) = (method.to_string(), path.to_string());
    let mut content_length = 0usize;
    loop {
        let mut header = String::new();
        let read = reader
            .read_line(&mut header)
            .map_err(|_| bad("the headers do not end"))?;
        let header = header.trim_end();
        if read == 0 || header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                content_length = value
                    .trim()
                    .parse()
                    .map_err(|_| bad("Content-Length is not a number"))?;
            }
        }
    }
    if content_length > BODY_LIMIT {
        return Err(Response::error(413, "the body is over 1 MiB"));
    }
    let mut body = vec![0; content_length];
    reader
        .read_exact(&mut body)
        .map_err(|_| bad("the body is shorter than its Content-Length"))?;
    let body = String::from_utf8(body).map_err(|_| bad("the body is not UTF-8"))?;
    Ok(Request { method, path, body })
}

fn write_response(mut stream: &TcpStream, response: &Response) -> std::io::Result<()> {
    let reason = match response.status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        _ => "",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
        response.status,
        response.body.len()
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(response.body.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, body: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            body: body.into(),
        }
    }

    #[test]
    fn a_job_is_accepted_polled_k_times_then_done() {
        let mut jobs = Jobs::new(2);
        let submitted = jobs.handle(&request("POST", "/jobs", r#"{"rows":3}"#));
        assert_eq!(submitted.status, 202);
        assert!(
            submitted
                .headers
                .contains(&("Location", "/jobs/1".to_string()))
        );
        assert!(
            submitted
                .headers
                .contains(&("Retry-After", "1".to_string()))
        );
        let statuses: Vec<u16> = (0..3)
            .map(|_| jobs.handle(&request("GET", "/jobs/1", "")).status)
            .collect();
        assert_eq!(statuses, [202, 202, 200]);
        let done = jobs.handle(&request("GET", "/jobs/1", ""));
        assert_eq!(
            done.body,
            r#"{"id":"1","state":"Completed","polls":4,"job":{"rows":3}}"#
        );
        assert_eq!(jobs.handle(&request("POST", "/notify", "{}")).status, 200);
        let stats = jobs.handle(&request("GET", "/stats", ""));
        assert_eq!(
            stats.body,
            r#"{"requests":6,"submitted":1,"status_polls":4,"notified":1}"#
        );
    }

    #[test]
    fn bad_requests_get_clear_answers_and_count_nothing_but_the_request() {
        let mut jobs = Jobs::new(0);
        assert_eq!(jobs.handle(&request("POST", "/jobs", "[1]")).status, 400);
        assert_eq!(jobs.handle(&request("GET", "/jobs", "")).status, 405);
        assert_eq!(jobs.handle(&request("GET", "/jobs/9", "")).status, 404);
        assert_eq!(jobs.handle(&request("GET", "/jobs/x", "")).status, 404);
        assert_eq!(jobs.handle(&request("DELETE", "/jobs/1", "")).status, 405);
        assert_eq!(jobs.handle(&request("GET", "/elsewhere", "")).status, 404);
        let stats = jobs.handle(&request("GET", "/stats?x=1", ""));
        assert_eq!(
            stats.body,
            r#"{"requests":6,"submitted":0,"status_polls":0,"notified":0}"#
        );
    }

    #[test]
    fn options_have_defaults_and_refuse_nonsense() {
        let parse = |args: &[&str]| parse_options(args.iter().map(|arg| arg.to_string()));
        assert_eq!(
            parse(&[]),
            Ok(Options {
                port: 8088,
                polls: 2
            })
        );
        assert_eq!(
            parse(&["--port", "0", "--polls", "5"]),
            Ok(Options { port: 0, polls: 5 })
        );
        assert!(parse(&["--port", "99999"]).is_err());
        assert!(parse(&["--polls"]).is_err());
        assert!(parse(&["--verbose"]).is_err());
    }

    #[test]
    fn messages_are_quoted_as_json() {
        assert_eq!(json_string("a \"b\" \\ \n"), r#""a \"b\" \\ \u000a""#);
    }
}
