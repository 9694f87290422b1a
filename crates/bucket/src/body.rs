//! Object bodies as byte streams, so that no object has to fit in memory on its way in or out.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, Stream, StreamExt};

/// The stream type behind a [`Body`].
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// The bytes of an object, streamed in chunks. Build one from a stream with
/// [`Body::from_stream`], or from bytes already in memory with `From`.
pub struct Body {
    stream: ByteStream,
}

impl Body {
    /// A body that yields the chunks of `stream`; an `Err` item aborts the upload.
    pub fn from_stream<S>(stream: S) -> Body
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        Body { stream: stream.boxed() }
    }

    /// A body of zero bytes.
    pub fn empty() -> Body {
        Body { stream: stream::empty().boxed() }
    }

    /// The underlying stream.
    pub fn into_stream(self) -> ByteStream {
        self.stream
    }

    /// Reads the whole body into memory. For small objects and tests; big objects should be
    /// consumed as a stream.
    pub async fn bytes(mut self) -> io::Result<Bytes> {
        let mut buf = BytesMut::new();
        while let Some(chunk) = self.stream.next().await {
            buf.extend_from_slice(&chunk?);
        }
        Ok(buf.freeze())
    }

    /// Reads the whole body into a `String`; invalid UTF-8 is an `InvalidData` error.
    pub async fn text(self) -> io::Result<String> {
        let bytes = self.bytes().await?;
        String::from_utf8(bytes.to_vec()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

impl Stream for Body {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.stream.as_mut().poll_next(cx)
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Body { .. }")
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Body {
        if bytes.is_empty() {
            return Body::empty();
        }
        Body { stream: stream::once(async move { Ok(bytes) }).boxed() }
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body::from(Bytes::from(bytes))
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Body {
        Body::from(Bytes::from_static(bytes))
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Body {
        Body::from(Bytes::from_static(text.as_bytes()))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Body {
        Body::from(Bytes::from(text))
    }
}
