//! The bench's load generator: one keep-alive HTTP/1.1 connection per client, requests written as prepared bytes
//! and answers read with just enough parsing to check them (like `wrk`), so the client spends its share of the
//! shared cores on sending load, not on a full HTTP stack.

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One keep-alive connection to the server under test.
pub struct LoadConnection {
    stream: TcpStream,
    host: String,
    key: String,
    request: Vec<u8>,
    buffer: Vec<u8>,
}

/// A response: its status code and body.
pub struct Answer<'a> {
    pub status: u16,
    pub body: &'a [u8],
}

impl LoadConnection {
    /// Connects to `url` (`http://host:port`), authenticating every call with `key`.
    pub async fn connect(url: &str, key: &str) -> anyhow::Result<Self> {
        let host = url.strip_prefix("http://").context("the load generator speaks plain http:// only")?;
        let host = host.trim_end_matches('/').to_string();
        let stream = TcpStream::connect(&host).await.with_context(|| format!("cannot connect to {host}"))?;
        stream.set_nodelay(true)?;
        Ok(LoadConnection {
            stream,
            host,
            key: key.to_string(),
            request: Vec::with_capacity(1024),
            buffer: Vec::with_capacity(4096),
        })
    }

    /// Sends `POST path` with a JSON body and reads the whole answer.
    pub async fn post(&mut self, path: &str, body: &[u8]) -> anyhow::Result<Answer<'_>> {
        self.request.clear();
        self.request.extend_from_slice(
            format!(
                "POST {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\n\r\n",
                self.host,
                self.key,
                body.len()
            )
            .as_bytes(),
        );
        self.request.extend_from_slice(body);
        self.stream.write_all(&self.request).await?;
        self.read_answer().await
    }

    /// Reads one response with a `content-length` body (what the server sends for every JSON answer).
    async fn read_answer(&mut self) -> anyhow::Result<Answer<'_>> {
        self.buffer.clear();
        let (head_end, body_len) = loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buffer[..end]).context("a response head that is not UTF-8")?;
                break (end + 4, content_length(head)?);
            }
            self.fill().await?;
        };
        while self.buffer.len() < head_end + body_len {
            self.fill().await?;
        }
        let head = std::str::from_utf8(&self.buffer[..head_end]).unwrap_or_default();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("a response without a status code: {head:?}"))?;
        Ok(Answer { status, body: &self.buffer[head_end..head_end + body_len] })
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 4096];
        let read = self.stream.read(&mut chunk).await?;
        if read == 0 {
            bail!("the server closed the connection");
        }
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

fn content_length(head: &str) -> anyhow::Result<usize> {
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("transfer-encoding") {
                bail!("the server sent a chunked answer; the load generator reads content-length bodies only");
            }
            if name.eq_ignore_ascii_case("content-length") {
                return value.trim().parse().context("a content-length that is not a number");
            }
        }
    }
    Ok(0)
}
