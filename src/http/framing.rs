//! Request framing the HTTP/1 parser would refuse before the dispatcher
//! sees it. actix-http answers a request head with an unusable
//! `Content-Length` with a bare `400` and no hook to change it; upstream's
//! `PlacementHandler` (`placement/handler.py`) answers it with the usual
//! error body, "content-length header must be an integer". So each
//! connection is wrapped in a [`GuardedStream`] that follows the request
//! framing, and when a head carries such a `Content-Length` it renames that
//! header to [`INVALID_CONTENT_LENGTH`] and discards the rest of the
//! connection; [`dispatch`] then renders the error like every other one and
//! closes the connection, since the body's extent is unknown.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use actix_web::http::ConnectionType;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{cors, error_envelope, microversion};
use crate::errors::ApiError;
use crate::state::AppState;

/// The header a refused `Content-Length` is renamed to. It has the length
/// of `content-length`, so the head is rewritten in place.
pub const INVALID_CONTENT_LENGTH: &str = "x-invalid-clen";

/// Upstream's detail text.
const INVALID_CONTENT_LENGTH_DETAIL: &str = "content-length header must be an integer";

/// As actix-http: a head larger than this is its to refuse (431).
const MAX_HEAD_BYTES: usize = 131_072;
/// As actix-http: more headers than this is its to refuse.
const MAX_HEADERS: usize = 96;
const INITIAL_BUFFER_BYTES: usize = 4096;

/// The default service: requests whose `Content-Length` was refused get
/// upstream's 400; every other request goes to [`super::dispatch`].
pub async fn dispatch(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    if request.headers().contains_key(INVALID_CONTENT_LENGTH) {
        return refuse_content_length(&request, &state);
    }
    super::dispatch(request, payload, state).await
}

/// The 400 with the headers `super::dispatch` puts on every response, and
/// `connection: close`: the unread body cannot be told from a next request.
fn refuse_content_length(request: &HttpRequest, state: &AppState) -> HttpResponse {
    let request_id = format!("req-{}", uuid::Uuid::new_v4());
    let version = microversion::negotiate(request.headers()).ok();
    let error = ApiError::bad_request(INVALID_CONTENT_LENGTH_DETAIL);
    let mut response = error_envelope::render(request, &error, version, &request_id, false);
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(HeaderName::from_static("x-openstack-request-id"), value);
    }
    let shown_version = version.unwrap_or(microversion::MIN);
    if let Ok(value) = HeaderValue::from_str(&format!("placement {shown_version}")) {
        headers.insert(HeaderName::from_static(microversion::HEADER), value);
    }
    headers.insert(header::VARY, HeaderValue::from_static(microversion::HEADER));
    cors::add_response_headers(&state.config.cors, request, headers);
    tracing::info!(
        method = %request.method(),
        path = request.path(),
        status = response.status().as_u16(),
        microversion = %shown_version,
        request_id = %request_id,
        "request"
    );
    response
}

/// Where the stream is in the request sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before or inside a request head: bytes are held back until the head
    /// is complete and checked.
    Head,
    /// Inside a body of known length: this many bytes pass unchecked.
    Body(u64),
    /// Framing not followed any more (chunked body, upgrade, a head
    /// actix-http will refuse anyway): everything passes unchecked.
    Passthrough,
    /// A refused head was handed on; the rest of the connection is read
    /// and dropped.
    Discard,
}

/// What a complete head means for the bytes after it.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    Length(u64),
    /// Not followed: the state goes to `Passthrough`.
    Unfollowed,
    /// `Content-Length` headers actix-http would refuse, by their name's
    /// offset in the head.
    Refused(Vec<usize>),
}

#[derive(Debug, PartialEq, Eq)]
enum Scan {
    Complete {
        length: usize,
        framing: Framing,
    },
    Partial,
    /// Not a head the checks can read; actix-http gives its own answer.
    Unreadable,
}

/// Reads one request head at the start of `bytes`.
fn scan_head(bytes: &[u8]) -> Scan {
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let length = match request.parse_with_uninit_headers(bytes, &mut headers) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Scan::Partial,
        Err(_) => return Scan::Unreadable,
    };
    let mut content_length = None;
    let mut content_length_names = Vec::new();
    let mut refused = false;
    let mut unfollowed = request.method == Some("CONNECT");
    for field in request.headers.iter() {
        if field.name.eq_ignore_ascii_case("content-length") {
            // As actix-http: one header, digits only (no sign).
            let value = std::str::from_utf8(field.value).map(str::trim);
            match value {
                Ok(text) if !text.starts_with('+') && content_length_names.is_empty() => {
                    match text.parse::<u64>() {
                        Ok(parsed) => content_length = Some(parsed),
                        Err(_) => refused = true,
                    }
                }
                _ => refused = true,
            }
            content_length_names.push(field.name.as_ptr() as usize - bytes.as_ptr() as usize);
        } else if field.name.eq_ignore_ascii_case("transfer-encoding")
            || field.name.eq_ignore_ascii_case("upgrade")
        {
            unfollowed = true;
        }
    }
    let framing = if refused {
        Framing::Refused(content_length_names)
    } else if unfollowed {
        Framing::Unfollowed
    } else {
        Framing::Length(content_length.unwrap_or(0))
    };
    Scan::Complete { length, framing }
}

/// A connection's byte stream, checked head by head (see the module doc).
/// Heads are held back until complete, so that a refused header can still
/// be renamed; bodies pass straight through.
pub struct GuardedStream<T> {
    inner: T,
    /// `buffer[start..end]` has been read from `inner` and not yet handed
    /// on; its first `released` bytes are cleared to hand on.
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    released: usize,
    state: State,
}

impl<T> GuardedStream<T> {
    pub fn new(inner: T) -> Self {
        GuardedStream {
            inner,
            buffer: Vec::new(),
            start: 0,
            end: 0,
            released: 0,
            state: State::Head,
        }
    }

    fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Decides what the held-back bytes are, as far as they go. Returns
    /// false when more bytes must be read first.
    fn classify(&mut self) -> bool {
        match self.state {
            State::Passthrough => {
                self.released = self.pending();
                self.released > 0
            }
            State::Discard => {
                self.start = 0;
                self.end = 0;
                false
            }
            State::Body(0) => {
                self.state = State::Head;
                self.pending() > 0
            }
            State::Body(remaining) => {
                let taken = remaining.min(self.pending() as u64);
                self.state = State::Body(remaining - taken);
                self.released = taken as usize;
                taken > 0
            }
            State::Head => {
                if self.pending() == 0 {
                    return false;
                }
                match scan_head(&self.buffer[self.start..self.end]) {
                    Scan::Partial if self.pending() < MAX_HEAD_BYTES => false,
                    Scan::Partial | Scan::Unreadable => {
                        self.state = State::Passthrough;
                        self.released = self.pending();
                        true
                    }
                    Scan::Complete { length, framing } => {
                        self.released = length;
                        self.state = match framing {
                            Framing::Length(body) => State::Body(body),
                            Framing::Unfollowed => State::Passthrough,
                            Framing::Refused(names) => {
                                for offset in names {
                                    let at = self.start + offset;
                                    self.buffer[at..at + INVALID_CONTENT_LENGTH.len()]
                                        .copy_from_slice(INVALID_CONTENT_LENGTH.as_bytes());
                                }
                                self.end = self.start + length;
                                State::Discard
                            }
                        };
                        true
                    }
                }
            }
        }
    }

    /// Makes room after `end` for another read.
    fn make_room(&mut self) {
        if self.start > 0 {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buffer.len() {
            let grown = (self.buffer.len() * 2).clamp(INITIAL_BUFFER_BYTES, MAX_HEAD_BYTES);
            self.buffer.resize(grown.max(self.end + 1), 0);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedStream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.released > 0 {
                let count = this.released.min(out.remaining());
                out.put_slice(&this.buffer[this.start..this.start + count]);
                this.start += count;
                this.released -= count;
                if this.start == this.end {
                    this.start = 0;
                    this.end = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.classify() {
                continue;
            }
            match this.state {
                State::Passthrough => return Pin::new(&mut this.inner).poll_read(cx, out),
                State::Body(remaining) if remaining >= out.remaining() as u64 => {
                    let before = out.filled().len();
                    ready!(Pin::new(&mut this.inner).poll_read(cx, out))?;
                    let read = (out.filled().len() - before) as u64;
                    this.state = State::Body(remaining - read);
                    return Poll::Ready(Ok(()));
                }
                State::Body(remaining) => {
                    // The next head follows this body: read no further.
                    let mut limited = ReadBuf::new(out.initialize_unfilled_to(remaining as usize));
                    ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
                    let read = limited.filled().len();
                    out.advance(read);
                    this.state = State::Body(remaining - read as u64);
                    return Poll::Ready(Ok(()));
                }
                State::Head | State::Discard => {
                    this.make_room();
                    let mut free = ReadBuf::new(&mut this.buffer[this.end..]);
                    ready!(Pin::new(&mut this.inner).poll_read(cx, &mut free))?;
                    let read = free.filled().len();
                    if read == 0 {
                        // End of stream: hand on any partial head as it is.
                        if this.state == State::Head && this.pending() > 0 {
                            this.state = State::Passthrough;
                            continue;
                        }
                        return Poll::Ready(Ok(()));
                    }
                    this.end += read;
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GuardedStream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, bytes)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out one chunk per read, then the end of the stream.
    struct Chunks(Vec<Vec<u8>>);

    impl AsyncRead for Chunks {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            out: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let chunks = &mut self.get_mut().0;
            if let Some(chunk) = chunks.first_mut() {
                let count = chunk.len().min(out.remaining());
                out.put_slice(&chunk[..count]);
                chunk.drain(..count);
                if chunk.is_empty() {
                    chunks.remove(0);
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    /// Everything the guarded stream hands on, read `capacity` bytes at a
    /// time.
    fn passed_on(chunks: &[&[u8]], capacity: usize) -> Vec<u8> {
        let mut stream =
            GuardedStream::new(Chunks(chunks.iter().map(|chunk| chunk.to_vec()).collect()));
        let mut context = Context::from_waker(std::task::Waker::noop());
        let mut output = Vec::new();
        loop {
            let mut space = vec![0_u8; capacity];
            let mut buffer = ReadBuf::new(&mut space);
            match Pin::new(&mut stream).poll_read(&mut context, &mut buffer) {
                Poll::Ready(Ok(())) if buffer.filled().is_empty() => return output,
                Poll::Ready(Ok(())) => output.extend_from_slice(buffer.filled()),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn all_splits(input: &[u8]) -> impl Iterator<Item = (Vec<u8>, usize)> + '_ {
        (1..input.len()).flat_map(move |split| {
            [1, 7, 4096].into_iter().map(move |capacity| {
                let (front, back) = input.split_at(split);
                (passed_on(&[front, back], capacity), split)
            })
        })
    }

    #[test]
    fn well_framed_requests_pass_unchanged() {
        let input: &[u8] = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello\
            GET /b HTTP/1.1\r\nHost: x\r\n\r\n\
            PUT /c HTTP/1.1\r\ncontent-length: 0\r\n\r\n\
            POST /d HTTP/1.1\r\nContent-Length: 38\r\n\r\nGET / HTTP/1.1\r\nContent-Length: x\r\n\r\n";
        assert_eq!(passed_on(&[input], 4096), input);
        for (output, split) in all_splits(input) {
            assert_eq!(output, input, "split at {split}");
        }
    }

    #[test]
    fn a_refused_length_is_renamed_and_the_rest_dropped() {
        let input: &[u8] = b"GET /a HTTP/1.1\r\n\r\n\
            POST /b HTTP/1.1\r\nContent-Length: hi mom\r\n\r\n{\"a\": 1}GET /c HTTP/1.1\r\n\r\n";
        let expected: &[u8] = b"GET /a HTTP/1.1\r\n\r\n\
            POST /b HTTP/1.1\r\nx-invalid-clen: hi mom\r\n\r\n";
        for (output, split) in all_splits(input) {
            assert_eq!(output, expected, "split at {split}");
        }
    }

    #[test]
    fn lengths_actix_refuses_are_refused() {
        for head in [
            "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
        ] {
            let Scan::Complete { framing, .. } = scan_head(head.as_bytes()) else {
                panic!("{head:?} is a complete head");
            };
            assert!(matches!(framing, Framing::Refused(_)), "{head:?}");
        }
        let Scan::Complete { framing, length } =
            scan_head(b"POST / HTTP/1.1\r\nContent-Length:  011 \r\n\r\nbody")
        else {
            panic!("a complete head");
        };
        assert_eq!((framing, length), (Framing::Length(11), 42));
    }

    #[test]
    fn framing_not_followed_passes_everything_on() {
        let input: &[u8] = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
            5\r\nhello\r\n0\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: x\r\n\r\n";
        for (output, split) in all_splits(input) {
            assert_eq!(output, input, "split at {split}");
        }
        assert_eq!(scan_head(b"\x01\x02 junk\r\n\r\n"), Scan::Unreadable);
        let junk: &[u8] = b"\x01\x02 junk\r\n\r\nmore";
        assert_eq!(passed_on(&[junk], 4096), junk);
    }

    #[test]
    fn a_partial_head_at_the_end_is_passed_on() {
        let input: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n";
        assert_eq!(passed_on(&[input], 4096), input);
    }
}
