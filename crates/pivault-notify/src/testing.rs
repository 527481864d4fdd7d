//! Test doubles that speak the real protocols, for this crate's tests and its users'
//! (cargo feature `testing`). Both bind `127.0.0.1:0` and stop when dropped.
//!
//! * [`SmtpSink`] — a minimal SMTP server (RFC 5321 §4.1 subset: EHLO/HELO, MAIL, RCPT,
//!   DATA with dot-unstuffing, RSET, NOOP, QUIT; 502 for anything else; no AUTH, no TLS)
//!   that stores every accepted mail.
//! * [`WebhookSink`] — an HTTP server recording every request (path, headers, raw and
//!   JSON body, the status it answered) and answering with a chosen status, or failing the
//!   first requests with 500 to exercise retries.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, Uri};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Longest command line accepted (RFC 5321 §4.5.3.1.4: 512 octets incl. CRLF).
const MAX_COMMAND_LINE: usize = 512;
/// Largest message accepted by DATA, in bytes (10 MiB).
const MAX_DATA: usize = 10 * 1024 * 1024;

/// One mail accepted by [`SmtpSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// Reverse-path of `MAIL FROM:<…>`, without angle brackets (empty for `<>`).
    pub envelope_from: String,
    /// Forward-paths of every accepted `RCPT TO:<…>`, in order, without angle brackets.
    pub rcpt_to: Vec<String>,
    /// The message as transmitted after DATA: headers and body, CRLF line ends,
    /// dot-unstuffed, without the terminating `.` line.
    pub data: Vec<u8>,
}

impl ReceivedMail {
    /// The decoded text of a single-part `text/*` message (7bit/8bit, quoted-printable or
    /// base64 transfer encoding; charset applied), or `None` if the data does not parse
    /// as a message or has no text body.
    pub fn text_body(&self) -> Option<String> {
        let parsed = mail_parser::MessageParser::default().parse(&self.data)?;
        parsed.body_text(0).map(|t| t.into_owned())
    }

    /// The decoded `Subject:` header (RFC 2047 encoded words resolved), if any.
    pub fn subject(&self) -> Option<String> {
        let parsed = mail_parser::MessageParser::default().parse(&self.data)?;
        parsed.subject().map(str::to_owned)
    }

    /// The `Message-ID:` header (RFC 5322 §3.6.4) of the raw DATA without its angle
    /// brackets, e.g. `out-42@pivault`, or `None` if the data does not parse or has none.
    pub fn message_id(&self) -> Option<String> {
        let parsed = mail_parser::MessageParser::default().parse(&self.data)?;
        parsed.message_id().map(str::to_owned)
    }
}

/// A real SMTP server on `127.0.0.1`, for tests. Stops (and drops open sessions) when
/// dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    mails: watch::Receiver<Vec<ReceivedMail>>,
    task: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// Binds `127.0.0.1:0` and starts serving.
    ///
    /// # Panics
    /// If the loopback port cannot be bound (test harness helper).
    #[allow(clippy::expect_used)]
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the SMTP sink");
        let addr = listener
            .local_addr()
            .expect("local address of the SMTP sink");
        let (tx, rx) = watch::channel(Vec::new());
        let task = tokio::spawn(async move {
            // Sessions live in the set, so aborting this task drops them all.
            let mut sessions = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            let tx = tx.clone();
                            sessions.spawn(async move {
                                let _ = serve_smtp(stream, &tx).await;
                            });
                        }
                    }
                    Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                }
            }
        });
        SmtpSink {
            addr,
            mails: rx,
            task,
        }
    }

    /// The TCP port the sink listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A configuration URL for [`SmtpConfig::from_url`](crate::SmtpConfig::from_url):
    /// `smtp://127.0.0.1:PORT?from=privacy@pivault.test&timeout_secs=5`.
    pub fn url(&self) -> String {
        format!(
            "smtp://127.0.0.1:{}?from=privacy@pivault.test&timeout_secs=5",
            self.port()
        )
    }

    /// Every mail accepted so far, in order of completion.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.mails.borrow().clone()
    }

    /// Waits until at least `n` mails were accepted or `timeout` passed, then returns all
    /// mails accepted so far (possibly fewer than `n`: assert on the length).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let mut rx = self.mails.clone();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|m| m.len() >= n)).await;
        self.messages()
    }
}

#[derive(Default)]
struct Transaction {
    from: Option<String>,
    rcpt: Vec<String>,
}

/// One SMTP session. Returns on QUIT, EOF, I/O error or an over-long line.
async fn serve_smtp(
    stream: TcpStream,
    tx: &watch::Sender<Vec<ReceivedMail>>,
) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    reply(&mut w, "220 pivault-sink ESMTP ready\r\n").await?;
    let mut txn = Transaction::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        if !read_line(&mut r, &mut line, MAX_COMMAND_LINE).await? {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let cmd = text.trim_end_matches(['\r', '\n']);
        let verb = cmd.split(' ').next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                txn = Transaction::default();
                reply(
                    &mut w,
                    "250-pivault-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n",
                )
                .await?;
            }
            "HELO" => {
                txn = Transaction::default();
                reply(&mut w, "250 pivault-sink\r\n").await?;
            }
            "MAIL" => match path_arg(cmd, "MAIL FROM:") {
                None => reply(&mut w, "501 5.5.4 Syntax: MAIL FROM:<address>\r\n").await?,
                Some(_) if txn.from.is_some() => {
                    reply(&mut w, "503 5.5.1 Nested MAIL command\r\n").await?;
                }
                Some(p) => {
                    txn.from = Some(p);
                    reply(&mut w, "250 2.1.0 OK\r\n").await?;
                }
            },
            "RCPT" => match path_arg(cmd, "RCPT TO:") {
                None => reply(&mut w, "501 5.5.4 Syntax: RCPT TO:<address>\r\n").await?,
                Some(_) if txn.from.is_none() => {
                    reply(&mut w, "503 5.5.1 Need MAIL first\r\n").await?;
                }
                Some(p) => {
                    txn.rcpt.push(p);
                    reply(&mut w, "250 2.1.5 OK\r\n").await?;
                }
            },
            "DATA" => {
                if txn.rcpt.is_empty() {
                    reply(&mut w, "503 5.5.1 Need RCPT first\r\n").await?;
                    continue;
                }
                reply(&mut w, "354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let Some(data) = read_data(&mut r).await? else {
                    reply(&mut w, "552 5.3.4 Message too big\r\n").await?;
                    return Ok(());
                };
                let t = std::mem::take(&mut txn);
                let mail = ReceivedMail {
                    envelope_from: t.from.unwrap_or_default(),
                    rcpt_to: t.rcpt,
                    data,
                };
                tx.send_modify(|m| m.push(mail));
                reply(&mut w, "250 2.0.0 OK queued\r\n").await?;
            }
            "RSET" => {
                txn = Transaction::default();
                reply(&mut w, "250 2.0.0 OK\r\n").await?;
            }
            "NOOP" => reply(&mut w, "250 2.0.0 OK\r\n").await?,
            "QUIT" => {
                reply(&mut w, "221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => reply(&mut w, "502 5.5.2 Command not recognized\r\n").await?,
        }
    }
}

async fn reply<W: AsyncWrite + Unpin>(w: &mut W, s: &str) -> std::io::Result<()> {
    w.write_all(s.as_bytes()).await?;
    w.flush().await
}

/// Reads one line (through `\n`) into `buf`. `Ok(false)` on EOF before any byte; an error
/// if the line exceeds `max` bytes.
async fn read_line<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<bool> {
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Ok(!buf.is_empty());
        }
        let (used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        buf.extend_from_slice(&available[..used]);
        r.consume(used);
        if buf.len() > max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "line too long",
            ));
        }
        if done {
            return Ok(true);
        }
    }
}

/// Reads DATA lines until `.` alone, removing one leading dot from other lines
/// (RFC 5321 §4.5.2). `None` if the message exceeds [`MAX_DATA`].
async fn read_data<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> std::io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if !read_line(r, &mut line, 1000 + 2).await? {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(Some(data));
        }
        let content = line.strip_prefix(b".").unwrap_or(&line);
        data.extend_from_slice(content);
        if data.len() > MAX_DATA {
            return Ok(None);
        }
    }
}

/// `MAIL FROM:<path> [params]` → `path`. Case-insensitive prefix; tolerates a space after
/// the colon.
fn path_arg(cmd: &str, prefix: &str) -> Option<String> {
    let head = cmd.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = cmd[prefix.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].to_owned())
}

/// One request received by [`WebhookSink`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedWebhook {
    /// Request path, e.g. `/sms`.
    pub path: String,
    /// The `Authorization` header value, if any.
    pub authorization: Option<String>,
    /// The body parsed as JSON (`Value::Null` if it was not JSON).
    pub body: serde_json::Value,
    /// The body exactly as received (what a signature covers).
    pub raw_body: Vec<u8>,
    /// Every request header in arrival order, names lower-case, values as text (headers
    /// whose value is not visible ASCII are recorded with the bytes lossily decoded).
    pub headers: Vec<(String, String)>,
    /// The HTTP status the sink answered this request with.
    pub status: u16,
}

impl ReceivedWebhook {
    /// The value of the first header named `name` (ASCII case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Chooses the status for the request with this 0-based arrival index.
type Responder = std::sync::Arc<dyn Fn(usize) -> StatusCode + Send + Sync>;

/// An HTTP server on `127.0.0.1` recording every request and answering it with a status
/// chosen by arrival order (fixed, or 500 for the first `n` then 200). Stops when dropped.
pub struct WebhookSink {
    addr: SocketAddr,
    requests: watch::Receiver<Vec<ReceivedWebhook>>,
    task: JoinHandle<()>,
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WebhookSink {
    /// Starts a sink that answers `200 OK`.
    ///
    /// # Panics
    /// If the loopback port cannot be bound.
    pub async fn start() -> WebhookSink {
        WebhookSink::with_status(StatusCode::OK).await
    }

    /// Starts a sink that answers every request with `status` (e.g. 500 to test failures).
    ///
    /// # Panics
    /// If the loopback port cannot be bound.
    pub async fn with_status(status: StatusCode) -> WebhookSink {
        WebhookSink::serve(std::sync::Arc::new(move |_| status)).await
    }

    /// Starts a sink that answers `500 Internal Server Error` to the first `n` requests and
    /// `200 OK` to every later one (to test retries; every attempt is recorded, see
    /// [`WebhookSink::attempts`]).
    ///
    /// # Panics
    /// If the loopback port cannot be bound.
    pub async fn failing_first(n: usize) -> WebhookSink {
        WebhookSink::serve(std::sync::Arc::new(move |i| {
            if i < n {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            }
        }))
        .await
    }

    #[allow(clippy::expect_used)]
    async fn serve(respond: Responder) -> WebhookSink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the webhook sink");
        let addr = listener
            .local_addr()
            .expect("local address of the webhook sink");
        let (tx, rx) = watch::channel(Vec::new());
        let app = axum::Router::new().fallback(
            move |uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
                let tx = tx.clone();
                let respond = std::sync::Arc::clone(&respond);
                async move {
                    let mut rec = ReceivedWebhook {
                        path: uri.path().to_owned(),
                        authorization: headers
                            .get(axum::http::header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned),
                        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
                        raw_body: body.to_vec(),
                        headers: headers
                            .iter()
                            .map(|(n, v)| {
                                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                                (n.as_str().to_ascii_lowercase(), v)
                            })
                            .collect(),
                        status: 0,
                    };
                    let mut status = StatusCode::OK;
                    // Index and push under the channel's lock, so concurrent requests get
                    // distinct indexes.
                    tx.send_modify(|r| {
                        status = respond(r.len());
                        rec.status = status.as_u16();
                        r.push(rec);
                    });
                    status
                }
            },
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        WebhookSink {
            addr,
            requests: rx,
            task,
        }
    }

    /// `http://127.0.0.1:PORT/sms`, for [`SmsConfig::url`](crate::SmsConfig::url).
    pub fn url(&self) -> String {
        self.url_at("/sms")
    }

    /// `http://127.0.0.1:PORT` followed by `path` (which should start with `/`), e.g.
    /// `/push` for [`PushConfig::url`](crate::PushConfig::url) or `/erasure` for
    /// [`SignedWebhook::new`](crate::SignedWebhook::new).
    pub fn url_at(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addr.port())
    }

    /// Every request received so far, in order, whatever status it was answered with.
    pub fn requests(&self) -> Vec<ReceivedWebhook> {
        self.requests.borrow().clone()
    }

    /// The requests answered with a 2xx status, in order.
    pub fn delivered(&self) -> Vec<ReceivedWebhook> {
        self.requests
            .borrow()
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .cloned()
            .collect()
    }

    /// How many requests arrived so far, failed ones included.
    pub fn attempts(&self) -> usize {
        self.requests.borrow().len()
    }

    /// Waits until at least `n` requests arrived or `timeout` passed, then returns all
    /// received so far.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedWebhook> {
        let mut rx = self.requests.clone();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|r| r.len() >= n)).await;
        self.requests()
    }
}
