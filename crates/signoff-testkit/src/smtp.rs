//! A real SMTP listener for tests: speaks enough SMTP for lettre (greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP,
//! QUIT; no STARTTLS or AUTH), records each message with its envelope, and can refuse recipients with `451` or
//! `550` to test how errors are classified. [`ReceivedMail`] reads a message back: headers, MIME parts (decoded
//! from quoted-printable or base64) and the links in them.

use base64::Engine;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How the listener answers `RCPT TO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpAnswer {
    /// `250`: accept the message.
    Accept,
    /// `451 4.3.0`: try again later.
    Transient,
    /// `550 5.1.1`: no such mailbox.
    Permanent,
}

/// One message as the listener received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), without angle brackets.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), without angle brackets.
    pub to: Vec<String>,
    /// The message as sent after `DATA`, dot-unstuffed, lines ending in CRLF.
    pub data: String,
}

/// One leaf MIME part, its body decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailPart {
    /// The media type, lowercase, without parameters: `text/plain`.
    pub content_type: String,
    pub body: String,
}

struct Shared {
    messages: Mutex<Vec<ReceivedMail>>,
    count: watch::Sender<usize>,
    answer: Mutex<SmtpAnswer>,
}

/// The listener, on `127.0.0.1` and a free port, until dropped with the test's runtime.
pub struct SmtpServer {
    pub addr: std::net::SocketAddr,
    shared: Arc<Shared>,
}

impl SmtpServer {
    /// Starts listening; every recipient is accepted until [`SmtpServer::answer_rcpt`] says otherwise.
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the SMTP listener");
        let addr = listener.local_addr().expect("listener address");
        let shared = Arc::new(Shared {
            messages: Mutex::new(Vec::new()),
            count: watch::channel(0).0,
            answer: Mutex::new(SmtpAnswer::Accept),
        });
        let accepting = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = accepting.clone();
                tokio::spawn(async move {
                    let _ = session(stream, &shared).await;
                });
            }
        });
        SmtpServer { addr, shared }
    }

    /// The plain-SMTP URL lettre connects to: `smtp://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// How `RCPT TO` is answered from now on.
    pub fn answer_rcpt(&self, answer: SmtpAnswer) {
        *self.shared.answer.lock().unwrap() = answer;
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.messages.lock().unwrap().clone()
    }

    /// The `n`th message received (1-based), waiting for it up to `within`; panics if it does not come.
    pub async fn wait_for(&self, n: usize, within: Duration) -> ReceivedMail {
        let mut count = self.shared.count.subscribe();
        let arrived = tokio::time::timeout(within, count.wait_for(|count| *count >= n)).await;
        assert!(matches!(arrived, Ok(Ok(_))), "message {n} did not arrive; received: {:#?}", self.messages());
        self.messages()[n - 1].clone()
    }
}

async fn session(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 signoff-test ESMTP ready\r\n").await?;
    let (mut from, mut to) = (None::<String>, Vec::<String>::new());
    let mut line = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let command = String::from_utf8_lossy(&line).trim_end().to_string();
        let verb = command.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-signoff-test greets you\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n",
            "HELO" => b"250 signoff-test\r\n",
            "MAIL" => {
                from = Some(address(&command));
                to.clear();
                b"250 2.1.0 OK\r\n"
            }
            "RCPT" if from.is_none() => b"503 5.5.1 MAIL first\r\n",
            "RCPT" => match *shared.answer.lock().unwrap() {
                SmtpAnswer::Accept => {
                    to.push(address(&command));
                    b"250 2.1.5 OK\r\n"
                }
                SmtpAnswer::Transient => b"451 4.3.0 Try again later\r\n",
                SmtpAnswer::Permanent => b"550 5.1.1 No such mailbox\r\n",
            },
            "DATA" if to.is_empty() => b"503 5.5.1 RCPT first\r\n",
            "DATA" => {
                write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let data = read_data(&mut lines).await?;
                let mail = ReceivedMail { from: from.take().unwrap_or_default(), to: std::mem::take(&mut to), data };
                let mut messages = shared.messages.lock().unwrap();
                messages.push(mail);
                shared.count.send_replace(messages.len());
                b"250 2.0.0 OK queued\r\n"
            }
            "RSET" => {
                (from, to) = (None, Vec::new());
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 Command not recognized\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// The message after `DATA`, up to the line holding only `.`, with leading dots unstuffed.
async fn read_data(lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<String> {
    let mut data = String::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let text = String::from_utf8_lossy(&line);
        if text == ".\r\n" || text == ".\n" {
            return Ok(data);
        }
        data.push_str(text.strip_prefix('.').unwrap_or(&text));
    }
}

/// The address in `MAIL FROM:<a@b> SIZE=1` or `RCPT TO:<a@b>`.
fn address(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command[start..].find('>').map_or(command.len(), |i| start + i);
    command[start..end].to_string()
}

impl ReceivedMail {
    /// A top-level header's value, unfolded and with RFC 2047 encoded words decoded (`None`: absent).
    pub fn header(&self, name: &str) -> Option<String> {
        header(headers(&self.data), name)
    }

    /// Every leaf MIME part, in order, bodies decoded.
    pub fn parts(&self) -> Vec<MailPart> {
        let mut parts = Vec::new();
        collect_parts(&self.data, &mut parts);
        parts
    }

    /// The first part of `content_type` (`text/plain`, `text/html`), decoded.
    pub fn part(&self, content_type: &str) -> Option<String> {
        self.parts().into_iter().find(|p| p.content_type == content_type).map(|p| p.body)
    }

    /// The `http(s)` links in the text part, in order.
    pub fn text_links(&self) -> Vec<String> {
        let text = self.part("text/plain").unwrap_or_default();
        text.split_whitespace()
            .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
            .map(String::from)
            .collect()
    }

    /// The `href`s of the HTML part, in order, with `&amp;` unescaped.
    pub fn html_links(&self) -> Vec<String> {
        let html = self.part("text/html").unwrap_or_default();
        html.split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(|h| h.replace("&amp;", "&"))
            .collect()
    }
}

/// The header block of a message or part (before the first empty line).
fn headers(entity: &str) -> &str {
    entity.split_once("\r\n\r\n").or_else(|| entity.split_once("\n\n")).map_or(entity, |(head, _)| head)
}

fn body(entity: &str) -> &str {
    entity.split_once("\r\n\r\n").or_else(|| entity.split_once("\n\n")).map_or("", |(_, body)| body)
}

fn header(head: &str, name: &str) -> Option<String> {
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ").replace("\n ", " ");
    unfolded.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| decode_words(value.trim()))
    })
}

/// A header parameter: `boundary` in `multipart/alternative; boundary="abc"`.
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim().trim_matches('"').to_string())
    })
}

fn collect_parts(entity: &str, parts: &mut Vec<MailPart>) {
    let head = headers(entity);
    let content_type = header(head, "Content-Type").unwrap_or_else(|| "text/plain".into());
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if media.starts_with("multipart/") {
        let Some(boundary) = parameter(&content_type, "boundary") else { return };
        let delimiter = format!("--{boundary}");
        for section in body(entity).split(&delimiter).skip(1) {
            if section.starts_with("--") {
                break;
            }
            collect_parts(section.trim_start_matches(['\r', '\n']), parts);
        }
        return;
    }
    let encoding = header(head, "Content-Transfer-Encoding").unwrap_or_default().to_ascii_lowercase();
    let raw = body(entity);
    let body = match encoding.as_str() {
        "base64" => {
            let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD.decode(compact).expect("valid base64 body");
            String::from_utf8(bytes).expect("UTF-8 body")
        }
        "quoted-printable" => decode_quoted_printable(raw),
        _ => raw.to_string(),
    };
    parts.push(MailPart { content_type: media, body: body.trim_end_matches(['\r', '\n']).to_string() });
}

/// Quoted-printable (RFC 2045): `=XX` bytes and `=` soft line breaks.
fn decode_quoted_printable(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if bytes[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            let hex = std::str::from_utf8(&bytes[i + 1..(i + 3).min(bytes.len())]).unwrap_or("");
            if let Ok(byte) = u8::from_str_radix(hex, 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("UTF-8 body")
}

/// RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) in a header value; whitespace between two words goes.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let Some(word) = encoded_word(&rest[start..]) else { break };
        let between = &rest[..start];
        if !(after_word && between.trim().is_empty()) {
            out.push_str(between);
        }
        out.push_str(&word.0);
        rest = &rest[start + word.1..];
        after_word = true;
    }
    out.push_str(rest);
    out
}

/// One encoded word at the start of `s`: its text and its length.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let mut fields = s[2..].splitn(3, '?');
    let (_charset, encoding, rest) = (fields.next()?, fields.next()?, fields.next()?);
    let end = rest.find("?=")?;
    let text = &rest[..end];
    let decoded = match encoding.to_ascii_lowercase().as_str() {
        "b" => String::from_utf8(base64::engine::general_purpose::STANDARD.decode(text).ok()?).ok()?,
        "q" => decode_quoted_printable(&text.replace('_', " ")),
        _ => return None,
    };
    let length = 2 + s[2..].find('?')? + 1 + encoding.len() + 1 + end + 2;
    Some((decoded, length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_and_encoded_words_decode() {
        assert_eq!(decode_quoted_printable("a=3Db=\r\nc =C3=A9"), "a=bc é");
        assert_eq!(decode_words("=?utf-8?b?Q2Fmw6k=?= =?utf-8?q?au_lait?= !"), "Caféau lait !");
        assert_eq!(decode_words("plain"), "plain");
    }

    #[test]
    fn multipart_bodies_are_split_and_decoded() {
        let data = "Subject: hi\r\nContent-Type: multipart/alternative;\r\n boundary=\"XY\"\r\n\r\n--XY\r\n\
                    Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
                    see https://x.test/a?token=3D1 =\r\nok\r\n--XY\r\nContent-Type: text/html\r\n\
                    Content-Transfer-Encoding: base64\r\n\r\nPGEgaHJlZj0iaHR0cHM6Ly94LnRlc3QvYj9hPTEmYW1wO2I9MiI+\r\n--XY--\r\n";
        let mail = ReceivedMail { from: String::new(), to: vec![], data: data.into() };
        assert_eq!(mail.header("subject").as_deref(), Some("hi"));
        let parts = mail.parts();
        assert_eq!(parts.iter().map(|p| p.content_type.as_str()).collect::<Vec<_>>(), ["text/plain", "text/html"]);
        assert_eq!(mail.text_links(), ["https://x.test/a?token=1"]);
        assert_eq!(mail.html_links(), ["https://x.test/b?a=1&b=2"]);
    }
}
