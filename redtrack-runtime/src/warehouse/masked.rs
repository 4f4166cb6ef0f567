//! Secrets that must reach the warehouse but never a log: COPY's AWS credentials.
//!
//! tokio-postgres logs the text of every statement it sends at DEBUG (`batch_execute`,
//! `simple_query`, `prepare`), and bound parameters with it, so a COPY carrying
//! `SECRET_ACCESS_KEY '...'` would write the secret to any log at that level; and COPY takes no
//! bound parameters. So the statement is built with a *placeholder* of the secret's length in
//! its place ([`mask`]), which is what tokio-postgres sees and logs, and the connections the
//! [`Connector`](super::Connector) opens carry every byte through a [`Masked`] stream, which swaps
//! the secret in for its placeholder as the bytes leave for the server (under TLS, before
//! encryption). A placeholder is registered only while its guard lives, so the streams do
//! nothing but copy bytes the rest of the time.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A secret and the placeholder that stands for it in statement text.
struct Mask {
    placeholder: Box<[u8]>,
    secret: Box<[u8]>,
}

/// The placeholders in use, and how many (read without the lock on every write).
static MASKS: RwLock<Vec<Arc<Mask>>> = RwLock::new(Vec::new());
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// A registered secret: put [`MaskGuard::placeholder`] in the statement instead of the secret.
/// Keep the guard until the statement has been sent (its future completed); dropping it
/// unregisters the placeholder.
pub struct MaskGuard(Arc<Mask>);

impl std::fmt::Debug for MaskGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MaskGuard")
            .field(&self.placeholder())
            .finish()
    }
}

impl MaskGuard {
    /// The placeholder: printable ASCII of the secret's byte length (`masked-` and random
    /// letters and digits), safe inside a SQL string literal.
    pub fn placeholder(&self) -> &str {
        // Built from ASCII letters, digits and `-` only.
        std::str::from_utf8(&self.0.placeholder).unwrap_or_default()
    }
}

impl Drop for MaskGuard {
    fn drop(&mut self) {
        let mut masks = MASKS.write().unwrap_or_else(|p| p.into_inner());
        masks.retain(|m| !Arc::ptr_eq(m, &self.0));
        ACTIVE.store(masks.len(), Ordering::SeqCst);
    }
}

/// Registers `secret` (the bytes as they must appear in the statement, i.e. already escaped
/// for a SQL literal) and returns the guard holding its placeholder.
pub(crate) fn mask(secret: &str) -> MaskGuard {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const PREFIX: &[u8] = b"masked-";
    let len = secret.len();
    let mut placeholder: Vec<u8> = if len >= 20 {
        PREFIX.to_vec()
    } else {
        Vec::new()
    };
    while placeholder.len() < len {
        placeholder.push(ALPHABET[rand::random_range(0..ALPHABET.len())]);
    }
    let mask = Arc::new(Mask {
        placeholder: placeholder.into_boxed_slice(),
        secret: secret.as_bytes().into(),
    });
    let mut masks = MASKS.write().unwrap_or_else(|p| p.into_inner());
    masks.push(mask.clone());
    ACTIVE.store(masks.len(), Ordering::SeqCst);
    MaskGuard(mask)
}

/// A connection's byte stream that swaps every registered placeholder for its secret on the
/// way out. Reads pass through.
pub(crate) struct Masked<S> {
    inner: S,
    /// Off for the plain stream under TLS: its bytes are TLS records, the swap happens above.
    swapping: bool,
    /// Bytes taken from the writer, swapped, not yet written to `inner`.
    out: BytesMut,
    /// The tail of what was taken that may be the start of a placeholder, held back until the
    /// next write (or a flush) says how it goes on.
    hold: BytesMut,
}

impl<S> Masked<S> {
    pub(crate) fn new(inner: S) -> Masked<S> {
        Masked {
            inner,
            swapping: true,
            out: BytesMut::new(),
            hold: BytesMut::new(),
        }
    }

    /// Turns the swapping off (for the stream a TLS session is built on).
    pub(crate) fn without_swapping(mut self) -> Masked<S> {
        self.swapping = false;
        self
    }
}

/// Swaps every placeholder in `buf` for its secret, in place (same length); returns how many
/// bytes at the end may be the start of a placeholder and must wait for what follows.
fn swap(buf: &mut [u8], masks: &[Arc<Mask>]) -> usize {
    let mut keep = 0;
    for m in masks {
        let p = &m.placeholder[..];
        let mut from = 0;
        while let Some(i) = memchr::memmem::find(&buf[from..], p) {
            let at = from + i;
            buf[at..at + p.len()].copy_from_slice(&m.secret);
            from = at + p.len();
        }
        // The longest proper prefix of the placeholder that ends `buf`.
        let longest = (p.len() - 1).min(buf.len());
        for k in (keep + 1..=longest).rev() {
            if buf.ends_with(&p[..k]) {
                keep = k;
                break;
            }
        }
    }
    keep
}

impl<S: AsyncWrite + Unpin> Masked<S> {
    /// Writes all of `out` to the inner stream.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Masked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Masked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        if !this.swapping || (ACTIVE.load(Ordering::SeqCst) == 0 && this.hold.is_empty()) {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        this.hold.extend_from_slice(buf);
        let keep = {
            let masks = MASKS.read().unwrap_or_else(|p| p.into_inner());
            swap(&mut this.hold, &masks)
        };
        let ready_len = this.hold.len() - keep;
        this.out = this.hold.split_to(ready_len);
        // Taken: what is not written yet goes with the next write or flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.hold.is_empty() {
            // Nothing follows: the held bytes were not a placeholder after all.
            let held = this.hold.split();
            this.out.unsplit(held);
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: tokio_postgres::tls::TlsStream + Unpin> tokio_postgres::tls::TlsStream for Masked<S> {
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        self.inner.channel_binding()
    }
}

/// A TLS connector whose session is built on a [`Masked`] stream with the swapping off, and is
/// itself wrapped in one that swaps: the placeholders are swapped before encryption.
pub(crate) struct MaskedTls<T>(pub(crate) T);

impl<T, S> tokio_postgres::tls::TlsConnect<Masked<S>> for MaskedTls<T>
where
    T: tokio_postgres::tls::TlsConnect<Masked<S>>,
    T::Stream: Unpin,
    T::Future: Send + 'static,
{
    type Stream = Masked<T::Stream>;
    type Error = T::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Masked<T::Stream>, T::Error>> + Send>>;

    fn connect(self, stream: Masked<S>) -> Self::Future {
        let session = self.0.connect(stream.without_swapping());
        Box::pin(async move { session.await.map(Masked::new) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A placeholder is swapped for its secret wherever the writes cut it, and only while its
    /// guard lives; other bytes pass unchanged.
    #[tokio::test]
    async fn placeholders_become_secrets_on_the_wire_whatever_the_write_sizes() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let guard = mask(secret);
        let placeholder = guard.placeholder().to_owned();
        assert_eq!(placeholder.len(), secret.len());
        assert!(placeholder.starts_with("masked-"));
        let text = format!("COPY t SECRET_ACCESS_KEY '{placeholder}' x; again '{placeholder}'");
        let want = text.replace(&placeholder, secret);
        for chunk in [1, 2, 7, 39, 40, 41, 4096] {
            let (client, mut server) = tokio::io::duplex(64);
            let mut w = Masked::new(client);
            let writer = async {
                for piece in text.as_bytes().chunks(chunk) {
                    w.write_all(piece).await.unwrap();
                }
                w.flush().await.unwrap();
                w.shutdown().await.unwrap();
            };
            let mut got = String::new();
            let reader = server.read_to_string(&mut got);
            let (_, r) = tokio::join!(writer, reader);
            r.unwrap();
            assert_eq!(got, want, "chunks of {chunk}");
        }
        drop(guard);
        let (client, mut server) = tokio::io::duplex(4096);
        let mut w = Masked::new(client);
        w.write_all(text.as_bytes()).await.unwrap();
        w.shutdown().await.unwrap();
        let mut got = String::new();
        server.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, text, "without its guard a placeholder is only text");
    }

    /// Bytes that begin like a placeholder but go on otherwise are written as they came, also
    /// when a flush comes between.
    #[tokio::test]
    async fn a_near_miss_is_left_alone() {
        let guard = mask("0123456789abcdefghijKLMN");
        let p = guard.placeholder().to_owned();
        let near = format!("{}!", &p[..p.len() - 1]);
        let (client, mut server) = tokio::io::duplex(4096);
        let mut w = Masked::new(client);
        w.write_all(&near.as_bytes()[..10]).await.unwrap();
        w.flush().await.unwrap();
        w.write_all(&near.as_bytes()[10..]).await.unwrap();
        w.shutdown().await.unwrap();
        let mut got = String::new();
        server.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, near);
    }
}
