//! A reply's charts as PNG files shared in the conversation with Slack's upload flow
//! (`files.getUploadURLExternal`, the upload, `files.completeUploadExternal`), and
//! what to say when Slack will not take them.

use bot_core::chart::{render, ChartError, ChartSpec};
use bot_core::Reply;

use crate::slack::webapi::{FileUpload, Share, WebApi, WebApiError};

/// One chart as a PNG file, rendered off the async threads.
pub async fn chart_file(chart: ChartSpec) -> Result<FileUpload, ChartError> {
    let title = chart.title.clone();
    let filename = chart.file_name();
    let bytes = tokio::task::spawn_blocking(move || render(&chart))
        .await
        .map_err(|e| ChartError::Draw(e.to_string()))??;
    Ok(FileUpload {
        alt_text: format!("Chart: {title}"),
        filename,
        title,
        bytes,
    })
}

/// Every chart of `reply` as a PNG file.
pub async fn chart_files(reply: &Reply) -> Result<Vec<FileUpload>, ChartError> {
    let mut files = Vec::new();
    for chart in reply.charts() {
        files.push(chart_file(chart.clone()).await?);
    }
    Ok(files)
}

/// Whether trying again later may succeed.
pub fn transient(e: &WebApiError) -> bool {
    match e {
        WebApiError::RateLimited { .. } | WebApiError::Transport { .. } => true,
        WebApiError::Http { status, .. } => *status >= 500 || *status == 408,
        WebApiError::Slack { error, .. } => matches!(
            error.as_str(),
            "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout"
        ),
    }
}

/// What the person is told when the chart could not be shared (`e` was permanent).
pub fn not_shared(e: &WebApiError) -> String {
    let hint = match e {
        WebApiError::Slack { error, .. } if error == "not_in_channel" => {
            " Invite me to this channel, or ask me in a direct message."
        }
        WebApiError::Slack { error, .. } if error == "missing_scope" => {
            " The app needs the `files:write` scope."
        }
        _ => "",
    };
    format!(
        "I could not post the chart here: Slack said `{}`.{hint}",
        e.code()
    )
}

/// Shares `files` in `channel` (in `thread_ts`), introduced by `comment`.
pub async fn share(
    web: &WebApi,
    files: &[FileUpload],
    channel: &str,
    thread_ts: Option<&str>,
    comment: Option<String>,
) -> Result<Vec<String>, WebApiError> {
    web.upload_files(
        files,
        &Share {
            channel: channel.to_owned(),
            thread_ts: thread_ts.map(str::to_owned),
            comment,
        },
    )
    .await
}
