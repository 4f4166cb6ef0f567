//! One connection to the backing PostgreSQL server, spoken in pgwire's message types (pgwire's
//! codec frames them; nothing here encodes bytes by hand). Each client session of the stand-in
//! owns one, so transactions, locks and isolation map 1:1 onto PostgreSQL's.

use std::collections::BTreeMap;

use futures::{SinkExt, StreamExt};
use pgwire::error::PgWireError;
use pgwire::messages::extendedquery::{Bind, Close, Describe, Execute, Flush, Parse, Sync};
use pgwire::messages::response::TransactionStatus;
use pgwire::messages::startup::{Password, PasswordMessageFamily, SecretKey, Startup};
use pgwire::messages::{
    DecodeContext, PgWireBackendMessage, PgWireFrontendMessage, ProtocolVersion,
};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, Encoder, Framed};

use crate::error::{Error, Result};

/// pgwire's message types framed for the client side of a connection.
#[derive(Debug)]
pub struct ClientCodec {
    ctx: DecodeContext,
}

impl Default for ClientCodec {
    fn default() -> Self {
        let mut ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
        ctx.awaiting_frontend_ssl = false;
        ctx.awaiting_frontend_startup = false;
        ClientCodec { ctx }
    }
}

impl Decoder for ClientCodec {
    type Item = PgWireBackendMessage;
    type Error = PgWireError;

    fn decode(
        &mut self,
        src: &mut bytes::BytesMut,
    ) -> std::result::Result<Option<Self::Item>, Self::Error> {
        PgWireBackendMessage::decode(src, &self.ctx)
    }
}

impl Encoder<PgWireFrontendMessage> for ClientCodec {
    type Error = PgWireError;

    fn encode(
        &mut self,
        item: PgWireFrontendMessage,
        dst: &mut bytes::BytesMut,
    ) -> std::result::Result<(), Self::Error> {
        item.encode(dst)
    }
}

/// How the stand-in proves the client's identity to PostgreSQL.
#[derive(Clone)]
pub enum BackendAuth {
    /// PostgreSQL trusts the connection (`-A trust`, what `scripts/services` sets up).
    Trust,
    /// Answer an MD5 challenge from the role's stored hash (`md5` + hex), which is all PostgreSQL's
    /// MD5 exchange needs; the client's plain password is never known to the stand-in.
    Md5Hash(String),
}

impl std::fmt::Debug for BackendAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendAuth::Trust => "Trust",
            BackendAuth::Md5Hash(_) => "Md5Hash(<redacted>)",
        })
    }
}

/// A connected, authenticated PostgreSQL session.
pub struct Backend {
    io: Framed<TcpStream, ClientCodec>,
    /// The transaction status of the last ReadyForQuery.
    pub status: TransactionStatus,
    /// ParameterStatus values PostgreSQL reported at startup.
    pub params: Vec<(String, String)>,
    /// PostgreSQL's process id of this session (what `pg_backend_pid()` returns).
    pub pid: i32,
    /// The key that cancels this session's queries.
    pub secret: SecretKey,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("pid", &self.pid).finish()
    }
}

impl Backend {
    /// Opens a session on `addr` as `user` in `database`, with extra startup parameters
    /// (GUC settings) in `params`. A refusal by PostgreSQL (no such database, no such role)
    /// comes back as [`Error::Db`] with PostgreSQL's fields.
    pub async fn connect(
        addr: &str,
        user: &str,
        database: &str,
        params: &[(String, String)],
        auth: &BackendAuth,
    ) -> Result<Backend> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| Error::Backend(format!("connecting to PostgreSQL at {addr}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let mut io = Framed::new(tcp, ClientCodec::default());
        let mut parameters = BTreeMap::new();
        parameters.insert("user".to_owned(), user.to_owned());
        parameters.insert("database".to_owned(), database.to_owned());
        for (k, v) in params {
            parameters.insert(k.clone(), v.clone());
        }
        let mut startup = Startup::new();
        startup.parameters = parameters;
        io.send(PgWireFrontendMessage::Startup(startup)).await?;
        let mut backend = Backend {
            io,
            status: TransactionStatus::Idle,
            params: Vec::new(),
            pid: 0,
            secret: SecretKey::I32(0),
        };
        loop {
            match backend.recv().await? {
                PgWireBackendMessage::Authentication(a) => {
                    use pgwire::messages::startup::Authentication as A;
                    match a {
                        A::Ok => {}
                        A::MD5Password(salt) => {
                            let answer = match auth {
                                BackendAuth::Md5Hash(h) => md5_answer_from_hash(h, &salt),
                                BackendAuth::Trust => {
                                    return Err(Error::Backend(format!(
                                    "PostgreSQL asks for a password for role \"{user}\", and the \
                                         stand-in has none; run PostgreSQL with trust or md5 \
                                         authentication for loopback connections"
                                )))
                                }
                            };
                            backend
                                .io
                                .send(PgWireFrontendMessage::PasswordMessageFamily(
                                    PasswordMessageFamily::Password(Password::new(answer)),
                                ))
                                .await?;
                        }
                        other => {
                            return Err(Error::Backend(format!(
                            "PostgreSQL asks for an authentication method the stand-in does not \
                                 speak ({other:?}); use trust or md5 for loopback connections"
                        )))
                        }
                    }
                }
                PgWireBackendMessage::ParameterStatus(p) => backend.params.push((p.name, p.value)),
                PgWireBackendMessage::BackendKeyData(k) => {
                    backend.pid = k.pid;
                    backend.secret = k.secret_key;
                }
                PgWireBackendMessage::ReadyForQuery(r) => {
                    backend.status = r.status;
                    return Ok(backend);
                }
                PgWireBackendMessage::ErrorResponse(e) => {
                    return Err(Error::Db(Box::new(e.into())))
                }
                PgWireBackendMessage::NoticeResponse(_) => {}
                other => {
                    return Err(Error::Backend(format!(
                        "unexpected message from PostgreSQL during startup: {other:?}"
                    )))
                }
            }
        }
    }

    /// Queues a message (sent on the next [`Backend::flush`] or when the buffer fills).
    pub async fn feed(&mut self, msg: PgWireFrontendMessage) -> Result<()> {
        self.io.feed(msg).await?;
        Ok(())
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> Result<()> {
        SinkExt::<PgWireFrontendMessage>::flush(&mut self.io).await?;
        Ok(())
    }

    /// Sends one message now.
    pub async fn send(&mut self, msg: PgWireFrontendMessage) -> Result<()> {
        self.io.send(msg).await?;
        Ok(())
    }

    /// The next message from PostgreSQL; a closed connection is an error.
    pub async fn recv(&mut self) -> Result<PgWireBackendMessage> {
        match self.io.next().await {
            Some(Ok(m)) => {
                if let PgWireBackendMessage::ReadyForQuery(r) = &m {
                    self.status = r.status;
                }
                Ok(m)
            }
            Some(Err(e)) => Err(e.into()),
            None => Err(Error::Backend("PostgreSQL closed the connection".into())),
        }
    }

    /// Queues Parse + Bind + Describe(portal) + Execute for `sql` as the statement and portal
    /// `name`, with text parameters and text results, then Flush. Responses are read by the
    /// caller.
    pub async fn queue_run(
        &mut self,
        name: &str,
        sql: &str,
        params: &[Option<String>],
    ) -> Result<()> {
        let n = (!name.is_empty()).then(|| name.to_owned());
        self.feed(PgWireFrontendMessage::Parse(Parse::new(
            n.clone(),
            sql.to_owned(),
            vec![],
        )))
        .await?;
        self.feed(PgWireFrontendMessage::Bind(Bind::new(
            n.clone(),
            n.clone(),
            vec![0],
            params
                .iter()
                .map(|p| {
                    p.as_ref()
                        .map(|s| bytes::Bytes::copy_from_slice(s.as_bytes()))
                })
                .collect(),
            vec![0],
        )))
        .await?;
        self.feed(PgWireFrontendMessage::Describe(Describe::new(
            b'P',
            n.clone(),
        )))
        .await?;
        self.feed(PgWireFrontendMessage::Execute(Execute::new(n, 0)))
            .await?;
        self.feed(PgWireFrontendMessage::Flush(Flush::new()))
            .await?;
        self.flush().await
    }

    /// Closes the internal statement `name` (its portal closes with it at the next Sync).
    pub async fn queue_close(&mut self, name: &str) -> Result<()> {
        self.feed(PgWireFrontendMessage::Close(Close::new(
            b'S',
            Some(name.to_owned()),
        )))
        .await?;
        self.feed(PgWireFrontendMessage::Close(Close::new(
            b'P',
            Some(name.to_owned()),
        )))
        .await
    }

    /// Sends Sync and reads up to ReadyForQuery, handing every other message to `other`.
    pub async fn sync<F>(&mut self, mut other: F) -> Result<TransactionStatus>
    where
        F: FnMut(PgWireBackendMessage),
    {
        self.send(PgWireFrontendMessage::Sync(Sync::new())).await?;
        loop {
            match self.recv().await? {
                PgWireBackendMessage::ReadyForQuery(r) => return Ok(r.status),
                m => other(m),
            }
        }
    }
}

/// PostgreSQL's stored MD5 hash of a password: `md5` + hex(md5(password + user)).
#[cfg(test)]
pub fn md5_hash(password: &str, user: &str) -> String {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    h.update(password.as_bytes());
    h.update(user.as_bytes());
    format!("md5{}", hex(&h.finalize()))
}

/// The answer to an MD5 challenge, from the stored hash: `md5` + hex(md5(hex-part + salt)).
pub fn md5_answer_from_hash(stored: &str, salt: &[u8]) -> String {
    use md5::{Digest, Md5};
    let inner = stored.strip_prefix("md5").unwrap_or(stored);
    let mut h = Md5::new();
    h.update(inner.as_bytes());
    h.update(salt);
    format!("md5{}", hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_postgresql() {
        // SELECT 'md5' || md5('secret' || 'alice')
        assert_eq!(
            md5_hash("secret", "alice"),
            "md54a0a68b43b6cd5cf266fa02f196e2371"
        );
        let a = md5_answer_from_hash(&md5_hash("secret", "alice"), &[1, 2, 3, 4]);
        assert!(a.starts_with("md5") && a.len() == 35);
    }
}
