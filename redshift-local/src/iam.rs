//! IAM database credentials: the temporary user names and passwords that the Redshift API's
//! `GetClusterCredentials` (provisioned; `https://docs.aws.amazon.com/redshift/latest/APIReference/API_GetClusterCredentials.html`)
//! and Redshift Serverless' `GetCredentials`
//! (`https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_GetCredentials.html`)
//! issue, and the logins that use them (`https://docs.aws.amazon.com/redshift/latest/mgmt/generating-iam-credentials-cli-api.html`).
//!
//! On AWS the API and the cluster share a store of issued credentials. Here the stand-in *is*
//! that store: its API listener sits in front of the emulated AWS endpoint (moto's server), so
//! every `GetClusterCredentials` goes to moto, which checks the call (the cluster exists, the
//! duration is 900..=3600 s) and makes the random password, and the stand-in records what moto
//! answered before passing the answer on. moto keeps no record of the passwords it returns, so
//! nothing else could check them. moto has no Redshift Serverless API; the stand-in answers
//! `GetCredentials` itself, for the workgroups it is given, with the caller's identity from the
//! emulated endpoint's `GetCallerIdentity` (`IAM:<user>` or `IAMR:<role>`).
//!
//! A login as `IAM:<user>` / `IAMA:<user>` / `IAMR:<role>` is accepted only with a password that
//! was issued for that name and has not expired, and only for the database it was issued for
//! (when `DbName` was given); the session then runs as the database user `<user>`, which must
//! exist unless the credentials were issued with `AutoCreate` (GetClusterCredentials:
//! "If AutoCreate is False ... the connection attempt will fail because the user doesn't exist
//! in the database"). Passwords are kept in memory only, never logged, and dropped once
//! expired.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use md5::{Digest, Md5};

/// The prefixes of temporary user names (`IAM:` existing user, `IAMA:` auto-created, `IAMR:` a
/// role's session on Serverless).
const PREFIXES: &[&str] = &["IAM:", "IAMA:", "IAMR:"];

/// One set of credentials the API issued.
#[derive(Clone)]
pub struct Issued {
    /// The name to log in with, e.g. `IAM:alice`.
    pub login: String,
    /// The database user the session runs as, e.g. `alice`.
    pub user: String,
    /// The password.
    password: String,
    /// The database it was issued for, if `DbName` was given.
    pub database: Option<String>,
    /// When it expires.
    pub expires: SystemTime,
    /// Whether the user is created at login if missing.
    pub auto_create: bool,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("login", &self.login)
            .field("user", &self.user)
            .field("database", &self.database)
            .field("expires", &self.expires)
            .field("auto_create", &self.auto_create)
            .finish_non_exhaustive()
    }
}

/// Whether `user` is a temporary IAM user name.
pub fn is_iam_login(user: &str) -> bool {
    PREFIXES.iter().any(|p| user.starts_with(p))
}

/// PostgreSQL's MD5 answer for `password` of `user` to `salt`.
fn md5_answer(user: &str, password: &str, salt: &[u8; 4]) -> String {
    let inner = format!("{:x}", Md5::digest(format!("{password}{user}").as_bytes()));
    let mut h = Md5::new();
    h.update(inner.as_bytes());
    h.update(salt);
    format!("md5{:x}", h.finalize())
}

/// The credentials issued so far.
#[derive(Default)]
pub struct Store {
    issued: Mutex<HashMap<String, Vec<Issued>>>,
}

impl Store {
    /// Records credentials the API issued.
    pub fn record(&self, issued: Issued) {
        if let Ok(mut map) = self.issued.lock() {
            let now = SystemTime::now();
            let list = map.entry(issued.login.clone()).or_default();
            list.retain(|i| i.expires > now);
            tracing::info!(login = %issued.login, database = ?issued.database, "IAM credentials issued");
            list.push(issued);
        }
    }

    /// The unexpired credentials of `login` for `database` whose password gives `answer` to
    /// the MD5 challenge `salt`.
    pub fn check(
        &self,
        login: &str,
        database: &str,
        answer: &str,
        salt: &[u8; 4],
    ) -> Option<Issued> {
        let map = self.issued.lock().ok()?;
        let now = SystemTime::now();
        map.get(login)?
            .iter()
            .filter(|i| i.expires > now)
            .filter(|i| i.database.as_deref().is_none_or(|d| d == database))
            .find(|i| md5_answer(login, &i.password, salt) == answer)
            .cloned()
    }
}

/// The API listener's settings.
pub struct Api {
    /// The emulated AWS endpoint (moto's server), e.g. `http://127.0.0.1:24575`.
    pub upstream: String,
    /// The Serverless workgroups `GetCredentials` knows.
    pub workgroups: Vec<String>,
}

type Body = Full<Bytes>;

fn response(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// Redshift Serverless' JSON error.
fn json_error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({"__type": kind, "message": message}).to_string();
    response(status, "application/x-amz-json-1.1", body)
}

/// Handles one API request.
pub async fn handle(
    api: &Api,
    store: &Store,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if let Some(op) = target.strip_prefix("RedshiftServerless.") {
        return Ok(serverless(api, store, op, &parts.headers, &body).await);
    }
    Ok(forward(api, store, parts, body).await)
}

/// The caller's access key, from the SigV4 `Authorization` header.
fn access_key(headers: &hyper::HeaderMap) -> Option<String> {
    let auth = headers.get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
    let cred = auth.split("Credential=").nth(1)?;
    Some(cred.split('/').next()?.to_owned())
}

/// `GetCredentials` of Redshift Serverless, which moto lacks.
async fn serverless(
    api: &Api,
    store: &Store,
    op: &str,
    headers: &hyper::HeaderMap,
    body: &[u8],
) -> Response<Body> {
    if op != "GetCredentials" {
        return json_error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &format!("redshift-local answers only GetCredentials of Redshift Serverless, not {op}"),
        );
    }
    let Some(key) = access_key(headers) else {
        return json_error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "the request is not signed",
        );
    };
    let req: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let Some(workgroup) = req.get("workgroupName").and_then(|v| v.as_str()) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "workgroupName is required",
        );
    };
    if !api.workgroups.iter().any(|w| w == workgroup) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "ResourceNotFoundException",
            &format!("Workgroup {workgroup} not found"),
        );
    }
    // "between 900 seconds (15 minutes) and 3600 seconds (60 minutes)", default 900
    let duration = req
        .get("durationSeconds")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(900);
    if !(900..=3600).contains(&duration) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "durationSeconds must be between 900 and 3600",
        );
    }
    let login = match caller(&api.upstream, &key).await {
        Ok(login) => login,
        Err(e) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                &format!("asking the AWS endpoint who the caller is: {e}"),
            )
        }
    };
    let password: String = (0..32)
        .map(|_| {
            let i = rand::random::<u8>() % 62;
            char::from(match i {
                0..=9 => b'0' + i,
                10..=35 => b'a' + i - 10,
                _ => b'A' + i - 36,
            })
        })
        .collect();
    let expires = SystemTime::now() + Duration::from_secs(duration);
    let epoch = expires
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let user = login.split_once(':').map_or("", |(_, u)| u).to_owned();
    store.record(Issued {
        login: login.clone(),
        user,
        password: password.clone(),
        database: req
            .get("dbName")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        expires,
        // Serverless creates the user of an IAM identity at its first login.
        auto_create: true,
    });
    let body = serde_json::json!({
        "dbUser": login,
        "dbPassword": password,
        "expiration": epoch,
        "nextRefreshTime": epoch,
    })
    .to_string();
    response(StatusCode::OK, "application/x-amz-json-1.1", body)
}

/// `IAM:<user>` or `IAMR:<role>` of the owner of `access_key`, from the AWS endpoint's STS
/// `GetCallerIdentity` (moto reads the caller from the access key of the Authorization header).
async fn caller(upstream: &str, access_key: &str) -> Result<String, String> {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/20000101/us-east-1/sts/aws4_request, \
         SignedHeaders=host, Signature=0"
    );
    let body = "Action=GetCallerIdentity&Version=2011-06-15";
    let (status, text) = post(
        upstream,
        &auth,
        "application/x-www-form-urlencoded",
        body.into(),
    )
    .await?;
    if status != 200 {
        return Err(format!("GetCallerIdentity answered {status}"));
    }
    let arn = xml_tag(&text, "Arn").ok_or("no Arn in GetCallerIdentity's answer")?;
    // arn:aws:iam::123456789012:user/alice, arn:aws:sts::123456789012:assumed-role/r/session
    let resource = arn.rsplit(':').next().unwrap_or("");
    let mut parts = resource.split('/');
    match (parts.next(), parts.next()) {
        (Some("user"), Some(name)) => Ok(format!("IAM:{name}")),
        (Some("assumed-role"), Some(role)) => Ok(format!("IAMR:{role}")),
        _ => Err(format!("an identity redshift-local does not map: {arn}")),
    }
}

/// POSTs `body` to `upstream`; its status and text.
async fn post(
    upstream: &str,
    authorization: &str,
    content_type: &str,
    body: Bytes,
) -> Result<(u16, String), String> {
    let uri: hyper::Uri = upstream.parse().map_err(|e| format!("{upstream}: {e}"))?;
    let req = Request::post(uri)
        .header(hyper::header::AUTHORIZATION, authorization)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let (status, _, bytes) = send(req).await?;
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// Sends `req` to its URI's host over HTTP/1.1.
async fn send(req: Request<Body>) -> Result<(u16, hyper::HeaderMap, Bytes), String> {
    let authority = req
        .uri()
        .authority()
        .ok_or("the upstream URL has no host")?
        .to_string();
    let tcp = tokio::net::TcpStream::connect(&authority)
        .await
        .map_err(|e| format!("connecting to {authority}: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = req;
    if let Ok(v) = authority.parse() {
        req.headers_mut().insert(hyper::header::HOST, v);
    }
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((parts.status.as_u16(), parts.headers, bytes))
}

/// Forwards a Redshift API call (the Query protocol) to the AWS endpoint, and records the
/// credentials of a successful `GetClusterCredentials`.
async fn forward(
    api: &Api,
    store: &Store,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> Response<Body> {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let uri = format!("{}{path}", api.upstream.trim_end_matches('/'));
    let mut builder = Request::builder().method(parts.method.clone()).uri(uri);
    for (k, v) in &parts.headers {
        if k != hyper::header::HOST {
            builder = builder.header(k, v);
        }
    }
    let Ok(req) = builder.body(Full::new(body)) else {
        return response(
            StatusCode::BAD_REQUEST,
            "text/plain",
            "a request redshift-local can't forward",
        );
    };
    let (status, headers, bytes) = match send(req).await {
        Ok(r) => r,
        Err(e) => {
            return response(
                StatusCode::BAD_GATEWAY,
                "text/plain",
                format!(
                    "redshift-local: the AWS endpoint {} did not answer: {e}",
                    api.upstream
                ),
            )
        }
    };
    if status == 200 && form.get("Action").map(String::as_str) == Some("GetClusterCredentials") {
        let text = String::from_utf8_lossy(&bytes);
        if let (Some(login), Some(password), Some(expiration)) = (
            xml_tag(&text, "DbUser"),
            xml_tag(&text, "DbPassword"),
            xml_tag(&text, "Expiration").and_then(|e| parse_time(&e)),
        ) {
            let user = login.split_once(':').map_or("", |(_, u)| u).to_owned();
            store.record(Issued {
                login,
                user,
                password,
                database: form.get("DbName").cloned(),
                expires: expiration,
                auto_create: form
                    .get("AutoCreate")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            });
        } else {
            tracing::warn!(
                "a GetClusterCredentials answer without DbUser, DbPassword or Expiration"
            );
        }
    }
    let mut r = Response::new(Full::new(bytes));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (k, v) in &headers {
        if k != hyper::header::TRANSFER_ENCODING && k != hyper::header::CONTENT_LENGTH {
            r.headers_mut().insert(k, v.clone());
        }
    }
    r
}

/// The text of the first `<tag>...</tag>` of an XML answer, unescaped.
fn xml_tag(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.f][Z|+00:00]` (UTC) as a time.
fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // days from civil (proleptic Gregorian), Howard Hinnant's algorithm
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_tags() {
        let t = parse_time("2024-03-01T12:30:05.123Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_709_296_205
        );
        assert_eq!(parse_time("2024-03-01 12:30:05+00:00"), Some(t));
        let xml = "<r><DbUser>IAM:alice</DbUser><DbPassword>a&amp;b</DbPassword></r>";
        assert_eq!(xml_tag(xml, "DbUser").as_deref(), Some("IAM:alice"));
        assert_eq!(xml_tag(xml, "DbPassword").as_deref(), Some("a&b"));
    }

    #[test]
    fn only_an_issued_unexpired_password_for_its_database_logs_in() {
        let store = Store::default();
        let salt = [1, 2, 3, 4];
        store.record(Issued {
            login: "IAM:alice".into(),
            user: "alice".into(),
            password: "pw".into(),
            database: Some("dev".into()),
            expires: SystemTime::now() + Duration::from_secs(900),
            auto_create: false,
        });
        store.record(Issued {
            login: "IAM:alice".into(),
            user: "alice".into(),
            password: "old".into(),
            database: None,
            expires: SystemTime::now() - Duration::from_secs(1),
            auto_create: false,
        });
        let ok = md5_answer("IAM:alice", "pw", &salt);
        assert!(store.check("IAM:alice", "dev", &ok, &salt).is_some());
        assert!(store.check("IAM:alice", "other", &ok, &salt).is_none());
        assert!(store.check("IAM:bob", "dev", &ok, &salt).is_none());
        let wrong = md5_answer("IAM:alice", "nope", &salt);
        assert!(store.check("IAM:alice", "dev", &wrong, &salt).is_none());
        let expired = md5_answer("IAM:alice", "old", &salt);
        assert!(store.check("IAM:alice", "dev", &expired, &salt).is_none());
        assert!(is_iam_login("IAMA:x") && !is_iam_login("alice"));
    }
}
