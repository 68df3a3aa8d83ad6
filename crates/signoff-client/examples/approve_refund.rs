//! Ask before a refund, wait for a person, and act on what they decided: the example of `README.md`.

use serde_json::json;
use signoff_client::Client;
use signoff_wire::{NewRequest, OutcomeBody, Status};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::new(&std::env::var("SIGNOFF_URL")?, &std::env::var("SIGNOFF_KEY")?)?;
    let mut refund = NewRequest::action("refund");
    refund.args = json!({"order": "1042", "amount": 120});
    refund.summary = Some("Refund order 1042".into());
    // The idempotency key makes a retry (or a restarted agent) find this request instead of asking again.
    let mut request = client.create_request(&refund, Some("refund-1042")).await?.request;
    while request.status == Status::Pending {
        request = client.wait(request.id, 300).await?; // at most 300 s a call; the deadline ends it at the latest
    }
    match (request.status, &request.decision) {
        (Status::Approved, Some(decision)) => {
            // Run with the approved arguments: an approver may have edited them.
            println!("refunding with {}", decision.args);
            client
                .report_outcome(request.id, &OutcomeBody { ok: true, detail: Some(json!({"refund": "re_1"})) })
                .await?;
        }
        (status, decision) => {
            let why = decision.as_ref().and_then(|d| d.comment.clone()).unwrap_or_default();
            println!("not refunding ({}): {why}", status.as_str());
        }
    }
    Ok(())
}
