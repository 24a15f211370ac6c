//! Small HTTP helpers of the driver.

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http::header::{self, HeaderValue};
use http_body_util::BodyExt;
use hyper::body::Body;

use super::body::HttpBody;

/// Reads at most `max` bytes of the body (the endpoint answers anything
/// beyond its limit with 413 without the rest being buffered).
pub(crate) async fn read_limited<B>(mut body: B, max: usize) -> Result<Bytes, B::Error>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut out = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            let room = max.saturating_sub(out.len());
            out.extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
            if out.len() >= max {
                break;
            }
        }
    }
    Ok(out.freeze())
}

/// A plain-text answer of the driver's own (a failed body, a stopped
/// service); every other answer is the endpoint's.
pub(crate) fn plain(status: StatusCode, body: &'static str) -> http::Response<HttpBody> {
    let mut out = http::Response::new(HttpBody::full(Bytes::from_static(body.as_bytes())));
    *out.status_mut() = status;
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    out
}

/// An endpoint's whole response as hyper's.
pub(crate) fn into_http(response: duplex_polling::Response) -> http::Response<HttpBody> {
    let mut out = http::Response::new(HttpBody::full(response.body));
    *out.status_mut() = response.status;
    *out.headers_mut() = response.headers;
    out
}

/// Sleeps until `deadline`, or forever without one.
pub(crate) async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
