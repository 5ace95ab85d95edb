//! The Slack stand-in's HTTP side: Web API methods, the upload URL and `response_url`s.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Map, Value};

use super::answer::{fail, json_answer, SLACK};
use super::{socket, Call, Message, Shared, Upload, RESPONSE_URL, UPLOAD};
use crate::listen::Conn;
use crate::record::{form_object, header_map, media_type};

/// Form fields Slack expects as JSON text.
const JSON_FIELDS: &[&str] = &["blocks", "attachments", "files", "metadata"];

fn ok(mut body: Value) -> Response {
    if let Some(obj) = body.as_object_mut() {
        obj.entry("ok").or_insert(Value::Bool(true));
    }
    json_answer(StatusCode::OK, body)
}

/// The arguments of a Web API call: query string merged under a JSON or form body.
/// `Err(())` for a JSON body that does not parse.
fn arguments(headers: &HeaderMap, uri: &Uri, body: &[u8]) -> Result<Value, ()> {
    let mut args: Map<String, Value> = form_object(uri.query().unwrap_or(""), JSON_FIELDS);
    match media_type(headers).as_str() {
        "application/json" => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(obj)) => args.extend(obj),
            Ok(_) | Err(_) if body.iter().all(u8::is_ascii_whitespace) => {}
            _ => return Err(()),
        },
        _ => args.extend(form_object(&String::from_utf8_lossy(body), JSON_FIELDS)),
    }
    // Slack accepts JSON text for these in JSON bodies too.
    for field in JSON_FIELDS {
        if let Some(Value::String(text)) = args.get(*field) {
            if let Ok(parsed) = serde_json::from_str::<Value>(text) {
                args.insert((*field).to_owned(), parsed);
            }
        }
    }
    Ok(Value::Object(args))
}

fn record(shared: &Shared, method: &str, uri: &Uri, headers: &HeaderMap, body: Value, raw: &[u8]) {
    shared.calls.push(Call {
        method: method.to_owned(),
        path: uri.path().to_owned(),
        headers: header_map(headers),
        body,
        raw: raw.to_vec(),
        at: Instant::now(),
    });
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    Some(token.trim().to_owned())
}

fn arg<'a>(args: &'a Value, name: &str) -> Option<&'a str> {
    args.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `/api/{method}`.
pub(super) async fn api(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<Conn>,
    Path(method): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let args = arguments(&headers, &uri, &body);
    record(
        &shared,
        &method,
        &uri,
        &headers,
        args.clone().unwrap_or(Value::Null),
        &body,
    );
    if let Some(resp) = shared.faults.apply(&method, &SLACK, &conn).await {
        return resp;
    }
    let Ok(args) = args else {
        return fail("invalid_json");
    };
    // A token goes in the Authorization header, or (forms, query) as `token`.
    let token = bearer(&headers).or_else(|| arg(&args, "token").map(str::to_owned));
    if method == "apps.connections.open" {
        return socket::connections_open(&shared, token.as_deref());
    }
    match token {
        None => return fail("not_authed"),
        Some(t) if t == shared.setup.bot_token => {}
        Some(t) if t.starts_with("xapp-") => return fail("not_allowed_token_type"),
        Some(_) => return fail("invalid_auth"),
    }
    let resp = match method.as_str() {
        "auth.test" => auth_test(&shared),
        "conversations.history" => history(&shared, &args),
        "conversations.replies" => replies(&shared, &args),
        "chat.postMessage" => post_message(&shared, &args),
        "chat.update" => update(&shared, &args),
        "chat.postEphemeral" => post_ephemeral(&shared, &args),
        "files.getUploadURLExternal" => get_upload_url(&shared, &args),
        "files.completeUploadExternal" => complete_upload(&shared, &args),
        "users.info" => users_info(&shared, &args),
        other => match shared.web().answers.get(other).cloned() {
            Some(answer) => ok(answer),
            None => fail("unknown_method"),
        },
    };
    shared.faults.after(&method, &conn, resp).await
}

/// Messages shown per page when the caller gives no `limit`, and the most it may ask.
const PAGE: usize = 100;
const MOST: usize = 1000;

/// One page of `messages` (already in the method's order) from the `cursor` argument
/// on, as Slack answers it: `has_more` and `response_metadata.next_cursor`.
fn page(args: &Value, messages: Vec<Value>) -> Response {
    let limit = arg(args, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(PAGE)
        .min(MOST);
    let from = match arg(args, "cursor") {
        None => 0,
        Some(c) => match c
            .strip_prefix("next:")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => return fail("invalid_cursor"),
        },
    };
    let with_metadata = arg(args, "include_all_metadata") == Some("true")
        || args.get("include_all_metadata") == Some(&Value::Bool(true));
    let shown: Vec<Value> = messages
        .iter()
        .skip(from)
        .take(limit)
        .cloned()
        .map(|mut m| {
            if !with_metadata {
                if let Some(obj) = m.as_object_mut() {
                    obj.remove("metadata");
                }
            }
            m
        })
        .collect();
    let next = from + shown.len();
    let more = next < messages.len();
    ok(json!({
        "messages": shown,
        "has_more": more,
        "response_metadata": {"next_cursor": if more { format!("next:{next}") } else { String::new() }},
    }))
}

/// `conversations.history`: the conversation's top-level messages, newest first.
fn history(shared: &Shared, args: &Value) -> Response {
    let Some(channel) = arg(args, "channel") else {
        return fail("channel_not_found");
    };
    let web = shared.web();
    let mut messages: Vec<Value> = web
        .message_order
        .iter()
        .filter(|(c, _)| c == channel)
        .filter_map(|key| web.messages.get(key))
        .filter(|m| m.get("thread_ts").is_none_or(|t| *t == m["ts"]))
        .cloned()
        .collect();
    drop(web);
    messages.reverse();
    page(args, messages)
}

/// `conversations.replies`: a thread's parent and replies, oldest first.
fn replies(shared: &Shared, args: &Value) -> Response {
    let (Some(channel), Some(ts)) = (arg(args, "channel"), arg(args, "ts")) else {
        return fail(if arg(args, "channel").is_none() {
            "channel_not_found"
        } else {
            "thread_not_found"
        });
    };
    let web = shared.web();
    let messages: Vec<Value> = web
        .message_order
        .iter()
        .filter(|(c, _)| c == channel)
        .filter_map(|key| web.messages.get(key))
        .filter(|m| m["ts"] == ts || m["thread_ts"] == ts)
        .cloned()
        .collect();
    drop(web);
    // The parent is the person's message, which the stand-in does not keep: a thread
    // with no replies of the bot's shows as empty.
    page(args, messages)
}

/// A few zones' Slack `tz_label` and standard-time `tz_offset` (seconds east of UTC).
const ZONES: &[(&str, &str, i64)] = &[
    ("UTC", "Coordinated Universal Time", 0),
    ("Europe/London", "Greenwich Mean Time", 0),
    ("Europe/Prague", "Central European Time", 3600),
    ("Europe/Berlin", "Central European Time", 3600),
    ("Europe/Paris", "Central European Time", 3600),
    ("Europe/Kyiv", "Eastern European Time", 7200),
    ("America/New_York", "Eastern Standard Time", -18000),
    ("America/Chicago", "Central Standard Time", -21600),
    ("America/Denver", "Mountain Standard Time", -25200),
    ("America/Los_Angeles", "Pacific Standard Time", -28800),
    ("Asia/Kolkata", "India Standard Time", 19800),
    ("Asia/Tokyo", "Japan Standard Time", 32400),
    (
        "Australia/Sydney",
        "Australian Eastern Standard Time",
        36000,
    ),
];

/// `users.info`: any `U…`/`W…` id is a person, in its [`super::SlackSetup::user_tz`]
/// zone or `UTC`; any other id is `user_not_found`.
fn users_info(shared: &Shared, args: &Value) -> Response {
    let Some(id) = arg(args, "user").filter(|u| u.starts_with('U') || u.starts_with('W')) else {
        return fail("user_not_found");
    };
    let tz = shared
        .setup
        .user_zones
        .get(id)
        .map_or("UTC", String::as_str);
    let (label, offset) = ZONES
        .iter()
        .find(|(zone, _, _)| *zone == tz)
        .map_or((tz, 0), |(_, label, offset)| (*label, *offset));
    let name = id.to_ascii_lowercase();
    ok(json!({
        "user": {
            "id": id,
            "team_id": shared.setup.team_id,
            "name": name,
            "real_name": format!("Sim {id}"),
            "deleted": false,
            "is_bot": false,
            "tz": tz,
            "tz_label": label,
            "tz_offset": offset,
            "profile": {"real_name": format!("Sim {id}"), "display_name": name},
        }
    }))
}

fn auth_test(shared: &Shared) -> Response {
    let s = &shared.setup;
    ok(json!({
        "url": format!("{}/", shared.base),
        "team": s.team,
        "user": s.bot_name,
        "team_id": s.team_id,
        "user_id": s.bot_user_id,
        "bot_id": s.bot_id,
        "is_enterprise_install": false,
    }))
}

/// The `message` object Slack answers for a bot post.
fn bot_message(shared: &Shared, args: &Value, ts: &str) -> Value {
    let s = &shared.setup;
    let mut m = json!({
        "type": "message",
        "user": s.bot_user_id,
        "bot_id": s.bot_id,
        "app_id": s.app_id,
        "team": s.team_id,
        "text": arg(args, "text").unwrap_or(""),
        "ts": ts,
    });
    if let Some(obj) = m.as_object_mut() {
        for field in ["blocks", "attachments", "metadata"] {
            if let Some(v) = args.get(field) {
                obj.insert(field.to_owned(), v.clone());
            }
        }
        if let Some(thread) = arg(args, "thread_ts") {
            obj.insert("thread_ts".into(), Value::from(thread));
        }
    }
    m
}

fn has_content(args: &Value) -> bool {
    arg(args, "text").is_some()
        || args
            .get("blocks")
            .is_some_and(|b| b.as_array().is_some_and(|a| !a.is_empty()))
        || args.get("attachments").is_some()
}

fn post_message(shared: &Shared, args: &Value) -> Response {
    let Some(channel) = arg(args, "channel") else {
        return fail("channel_not_found");
    };
    if !has_content(args) {
        return fail("no_text");
    }
    let mut web = shared.web();
    let ts = web.ts();
    let message = bot_message(shared, args, &ts);
    let key = (channel.to_owned(), ts.clone());
    web.messages.insert(key.clone(), message.clone());
    web.message_order.push(key);
    ok(json!({"channel": channel, "ts": ts, "message": message}))
}

fn update(shared: &Shared, args: &Value) -> Response {
    let (Some(channel), Some(ts)) = (arg(args, "channel"), arg(args, "ts")) else {
        return fail(if arg(args, "channel").is_none() {
            "channel_not_found"
        } else {
            "message_not_found"
        });
    };
    if !has_content(args) {
        return fail("no_text");
    }
    let mut web = shared.web();
    let Some(stored) = web.messages.get_mut(&(channel.to_owned(), ts.to_owned())) else {
        return fail("message_not_found");
    };
    let mut fresh = bot_message(shared, args, ts);
    if let Some(obj) = fresh.as_object_mut() {
        if let Some(old) = stored.get("thread_ts") {
            obj.insert("thread_ts".into(), old.clone());
        }
        // Slack leaves a message's metadata as it was when an update gives none.
        if let (None, Some(old)) = (obj.get("metadata"), stored.get("metadata")) {
            obj.insert("metadata".into(), old.clone());
        }
    }
    *stored = fresh.clone();
    let mut answer = json!({
        "channel": channel,
        "ts": ts,
        "text": arg(args, "text").unwrap_or(""),
        "message": fresh,
    });
    if let (Some(obj), Some(blocks)) = (answer.as_object_mut(), args.get("blocks")) {
        obj.insert("blocks".into(), blocks.clone());
    }
    ok(answer)
}

fn post_ephemeral(shared: &Shared, args: &Value) -> Response {
    if arg(args, "channel").is_none() {
        return fail("channel_not_found");
    }
    if arg(args, "user").is_none() {
        return fail("user_not_in_channel");
    }
    if !has_content(args) {
        return fail("no_text");
    }
    let ts = shared.web().ts();
    ok(json!({"message_ts": ts}))
}

fn get_upload_url(shared: &Shared, args: &Value) -> Response {
    let filename = arg(args, "filename");
    let length = match args.get("length") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        _ => None,
    };
    let (Some(filename), Some(length)) = (filename, length) else {
        return fail("invalid_arguments");
    };
    let mut web = shared.web();
    web.next_file += 1;
    let file_id = format!("F0SIM{:06}", web.next_file);
    web.uploads.insert(
        file_id.clone(),
        Upload {
            file_id: file_id.clone(),
            filename: filename.to_owned(),
            length,
            bytes: None,
            completed: false,
            title: None,
            channel_id: None,
            initial_comment: None,
            thread_ts: None,
        },
    );
    ok(json!({
        "upload_url": format!("{}/upload/{file_id}", shared.base),
        "file_id": file_id,
    }))
}

fn complete_upload(shared: &Shared, args: &Value) -> Response {
    let Some(files) = args.get("files").and_then(Value::as_array) else {
        return fail("invalid_arguments");
    };
    let mut web = shared.web();
    let mut answered = Vec::new();
    // Check every id before changing anything: Slack completes all or none.
    for f in files {
        let id = f.get("id").and_then(Value::as_str).unwrap_or("");
        match web.uploads.get(id) {
            Some(u) if u.bytes.is_some() => {}
            _ => return fail("file_not_found"),
        }
    }
    for f in files {
        let id = f.get("id").and_then(Value::as_str).unwrap_or("");
        let title = f.get("title").and_then(Value::as_str).map(str::to_owned);
        if let Some(u) = web.uploads.get_mut(id) {
            u.completed = true;
            u.title = title.clone().or_else(|| Some(u.filename.clone()));
            u.channel_id = arg(args, "channel_id").map(str::to_owned);
            u.initial_comment = arg(args, "initial_comment").map(str::to_owned);
            u.thread_ts = arg(args, "thread_ts").map(str::to_owned);
            answered.push(json!({"id": id, "title": u.title}));
        }
    }
    ok(json!({"files": answered}))
}

/// The file part of a `multipart/form-data` body (the first part with a
/// `filename`, else the first part); `None` when it does not parse.
fn multipart_file(content_type: &str, body: &[u8]) -> Option<Vec<u8>> {
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(start) = find(rest, delimiter.as_bytes()) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let end = find(rest, delimiter.as_bytes())?;
        let part = &rest[..end];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let split = find(part, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&part[..split]).to_ascii_lowercase();
        parts.push((head.contains("filename="), part[split + 4..].to_vec()));
    }
    let first_file = parts.iter().position(|(is_file, _)| *is_file);
    let index = first_file.unwrap_or(0);
    parts.into_iter().nth(index).map(|(_, bytes)| bytes)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `POST /upload/{file_id}`: raw bytes or multipart; answers `OK - <length>`.
pub(super) async fn upload(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<Conn>,
    Path(file_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&shared, UPLOAD, &uri, &headers, Value::Null, &body);
    if let Some(resp) = shared.faults.apply(UPLOAD, &SLACK, &conn).await {
        return resp;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let bytes = if media_type(&headers) == "multipart/form-data" {
        match multipart_file(content_type, &body) {
            Some(b) => b,
            None => return (StatusCode::BAD_REQUEST, "invalid multipart body").into_response(),
        }
    } else {
        body.to_vec()
    };
    let mut web = shared.web();
    let Some(u) = web.uploads.get_mut(&file_id) else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let len = bytes.len();
    u.bytes = Some(bytes);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("OK - {len}"),
    )
        .into_response()
}

/// `POST /response/{id}`: a `response_url` post (JSON).
pub(super) async fn response_url(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<Conn>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = serde_json::from_slice::<Value>(&body).ok();
    record(
        &shared,
        RESPONSE_URL,
        &uri,
        &headers,
        parsed.clone().unwrap_or(Value::Null),
        &body,
    );
    if let Some(resp) = shared.faults.apply(RESPONSE_URL, &SLACK, &conn).await {
        return resp;
    }
    if parsed.is_none() {
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    }
    let (uses, ttl) = (
        shared.setup.response_url_uses,
        shared.setup.response_url_ttl,
    );
    let mut web = shared.web();
    let entry = web
        .response_urls
        .entry(id)
        .or_insert_with(|| super::ResponseUrl {
            minted: Instant::now(),
            uses: 0,
        });
    if entry.minted.elapsed() > ttl {
        return json_answer(
            StatusCode::NOT_FOUND,
            json!({"ok": false, "error": "expired_url"}),
        );
    }
    if entry.uses >= uses {
        return json_answer(
            StatusCode::NOT_FOUND,
            json!({"ok": false, "error": "used_url"}),
        );
    }
    entry.uses += 1;
    json_answer(StatusCode::OK, json!({"ok": true}))
}

/// The message a test would see in a channel, for `block_actions` payloads.
pub(super) fn stored_message(shared: &Shared, channel: &str, ts: &str) -> Option<Message> {
    shared
        .web()
        .messages
        .get(&(channel.to_owned(), ts.to_owned()))
        .map(|m| Message {
            channel: channel.to_owned(),
            ts: ts.to_owned(),
            message: m.clone(),
        })
}

#[cfg(test)]
mod tests {
    use super::multipart_file;

    #[test]
    fn finds_the_file_part_of_a_multipart_body() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\nworld\r\n--XyZ--\r\n";
        assert_eq!(
            multipart_file("multipart/form-data; boundary=XyZ", body),
            Some(b"hello\r\nworld".to_vec())
        );
        assert_eq!(multipart_file("multipart/form-data", body), None);
    }
}
