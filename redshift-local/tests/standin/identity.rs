//! Who the stand-in says it is, and who it lets in.

use futures::{SinkExt, StreamExt};
use pgwire::messages::startup::{Authentication, Startup};
use pgwire::messages::{
    DecodeContext, PgWireBackendMessage, PgWireFrontendMessage, ProtocolVersion,
};
use tokio_util::codec::{Decoder, Encoder, Framed};

use crate::common::*;

/// r_VERSION: `version()` is PostgreSQL 8.0.2's string with Redshift's version at the end.
#[tokio::test]
async fn version_is_redshifts() {
    let c = connect_url(&var("REDTRACK_REDSHIFT_URL")).await.unwrap();
    let v = one(&c, "SELECT version()").await.unwrap();
    assert!(
        v.starts_with(
            "PostgreSQL 8.0.2 on i686-pc-linux-gnu, compiled by GCC gcc (GCC) 3.4.2 20041017 \
             (Red Hat 3.4.2-6.fc3), Redshift 1.0."
        ),
        "{v}"
    );
    // as the runtime asks it, through the extended protocol with a binary VARCHAR result
    let row = c
        .query_one("SELECT CAST(version() AS VARCHAR(512))", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), v);
    assert_eq!(
        one(&c, "SHOW server_version").await.as_deref(),
        Some("8.0.2")
    );
    // the string 'version()' is left alone
    assert_eq!(
        one(&c, "SELECT 'version()'").await.as_deref(),
        Some("version()")
    );
}

struct Codec(DecodeContext);

impl Decoder for Codec {
    type Item = PgWireBackendMessage;
    type Error = pgwire::error::PgWireError;
    fn decode(&mut self, src: &mut bytes::BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        PgWireBackendMessage::decode(src, &self.0)
    }
}

impl Encoder<PgWireFrontendMessage> for Codec {
    type Error = pgwire::error::PgWireError;
    fn encode(
        &mut self,
        item: PgWireFrontendMessage,
        dst: &mut bytes::BytesMut,
    ) -> Result<(), Self::Error> {
        item.encode(dst)
    }
}

/// `server_version` in the startup ParameterStatus is 8.0.2, and the login is an MD5 challenge,
/// Redshift's default (r_CREATE_USER: passwords are stored as MD5 hashes).
#[tokio::test]
async fn startup_reports_8_0_2_and_asks_for_md5() {
    let url = var("REDTRACK_REDSHIFT_URL");
    let hostport = url
        .split('@')
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(hostport).await.unwrap();
    let mut ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
    ctx.awaiting_frontend_ssl = false;
    ctx.awaiting_frontend_startup = false;
    let mut io = Framed::new(tcp, Codec(ctx));
    let mut startup = Startup::new();
    startup.parameters.insert("user".into(), "redtrack".into());
    startup.parameters.insert("database".into(), var_db());
    io.send(PgWireFrontendMessage::Startup(startup))
        .await
        .unwrap();
    let Some(Ok(PgWireBackendMessage::Authentication(Authentication::MD5Password(salt)))) =
        io.next().await
    else {
        panic!("expected an MD5 password request");
    };
    assert_eq!(salt.len(), 4);
    // answer it as libpq does
    let pw = {
        use md5::{Digest, Md5};
        let inner = format!("{:x}", Md5::digest(b"redtrackredtrack"));
        let mut h = Md5::new();
        h.update(inner.as_bytes());
        h.update(&salt);
        format!("md5{:x}", h.finalize())
    };
    io.send(PgWireFrontendMessage::PasswordMessageFamily(
        pgwire::messages::startup::PasswordMessageFamily::Password(
            pgwire::messages::startup::Password::new(pw),
        ),
    ))
    .await
    .unwrap();
    let mut server_version = None;
    while let Some(Ok(m)) = io.next().await {
        match m {
            PgWireBackendMessage::ParameterStatus(p) if p.name == "server_version" => {
                server_version = Some(p.value)
            }
            PgWireBackendMessage::ReadyForQuery(_) => break,
            PgWireBackendMessage::ErrorResponse(e) => panic!("login failed: {e:?}"),
            _ => {}
        }
    }
    assert_eq!(server_version.as_deref(), Some("8.0.2"));
}

/// A wrong password is refused; a user created through the stand-in (CREATE USER ... PASSWORD,
/// r_CREATE_USER) logs in with its password and only with it.
#[tokio::test]
async fn md5_password_authentication() {
    let url = var("REDTRACK_REDSHIFT_URL");
    let wrong = url.replacen(":redtrack@", ":not-the-password@", 1);
    let e = connect_url(&wrong)
        .await
        .err()
        .expect("a wrong password is refused");
    assert_eq!(db_err(&e).0, "28P01");

    let c = connect_url(&url).await.unwrap();
    let _ = c.batch_execute("DROP USER IF EXISTS rl_alice").await;
    c.batch_execute("CREATE USER rl_alice PASSWORD 'Sup3rSecret'")
        .await
        .unwrap();
    let alice = url.replacen("redtrack:redtrack@", "rl_alice:Sup3rSecret@", 1);
    let a = connect_url(&alice).await.expect("the new user logs in");
    assert_eq!(
        one(&a, "SELECT current_user").await.as_deref(),
        Some("rl_alice")
    );
    let bad = url.replacen("redtrack:redtrack@", "rl_alice:sup3rsecret@", 1);
    assert_eq!(db_err(&connect_url(&bad).await.err().unwrap()).0, "28P01");
    let nobody = url.replacen("redtrack:redtrack@", "rl_nobody:x@", 1);
    assert_eq!(
        db_err(&connect_url(&nobody).await.err().unwrap()).0,
        "28P01"
    );
    drop(a);
    c.batch_execute("DROP USER rl_alice").await.unwrap();
}

/// A database that does not exist is refused at login, as PostgreSQL refuses it.
#[tokio::test]
async fn unknown_database_is_refused() {
    let e = connect_url(&url(Mode::Provisioned, "rl_no_such_database"))
        .await
        .err()
        .unwrap();
    assert_eq!(db_err(&e).0, "3D000");
}
