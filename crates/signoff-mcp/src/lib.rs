//! Signoff's MCP server: approval tools any MCP-capable agent can call, and `approval_prompt`, which turns a coding
//! agent's permission prompts (Claude Code's `--permission-prompt-tool`) into routed, audited requests.
//!
//! The tools ([`Tools`]) are written once, over [`Signoff`], the few calls they make on behalf of one API key. Two
//! front ends serve them:
//!
//! - [`serve_stdio`]: `signoff mcp`, a process an agent starts, calling a Signoff server through the HTTP client
//!   ([`signoff_client::Client`] is a [`Signoff`]);
//! - [`router`]: `/mcp` inside `signoff serve`, streamable HTTP, calling the service layer in process with the key
//!   that authenticated the HTTP call ([`InProcess`]).
//!
//! A failed call is a tool error (`isError: true`) whose structured content is the API's error body, with its code.
#![forbid(unsafe_code)]

mod backend;
mod http;
mod permission;
mod tools;
mod view;

pub use backend::{Connect, Failure, Signoff};
pub use http::{InProcess, OnBehalf, router};
pub use tools::{DEFAULT_WAIT_SECONDS, Tools};

/// Serves the tools on standard input and output until the client closes them, calling Signoff through `client`.
pub async fn serve_stdio(client: signoff_client::Client) -> std::io::Result<()> {
    use rmcp::ServiceExt;
    let running = Tools::new(client).serve(rmcp::transport::stdio()).await.map_err(std::io::Error::other)?;
    running.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}
