//! Digests end to end, with the real Slack and email adapters against a fake Slack Web API and a real SMTP listener:
//! a digest group's members get no ask per request, then, at the digest time, one Slack message and one email each
//! listing every pending request with the total (two replicas sending it once, and a restart not sending it again);
//! an urgent request is asked at once; with fewer pending than `min`, each is asked one by one at the digest time.

use serde_json::{Value, json};
use signoff_domain::Channel;
use signoff_notify::email::{EmailConfig, Mailer};
use signoff_notify::links::LinkSigner;
use signoff_notify::slack::SlackClient;
use signoff_server::AppState;
use signoff_server::notify::{EmailSender, SlackSender};
use signoff_testkit::fake_slack::{FakeSlack, SlackCall};
use signoff_testkit::smtp::{ReceivedMail, SmtpServer};
use signoff_testkit::{Backend, TestApp, TestDatabase, on_every_backend, send};
use std::sync::Arc;
use std::time::Duration;

on_every_backend!(
    a_digest_reaches_each_member_once_per_channel_with_every_pending_request_and_the_total,
    below_min_requests_are_asked_one_by_one_at_the_digest_time,
);

const WITHIN: Duration = Duration::from_secs(20);

fn policy(digest: &str) -> String {
    format!(
        r#"
version: 1
approvers:
  - {{ id: dana, name: Dana, email: dana@example.com, slack: U0DANA, groups: [finance] }}
  - {{ id: carl, name: Carl, email: carl@example.com, slack: U0CARL, groups: [finance] }}
groups:
  finance: {{ notify: [slack, email], digest: {digest} }}
defaults: {{ route: finance, timeout: 1h, on_timeout: reject }}
rules:
  - {{ name: rush, when: 'action == "rush"', route: finance, timeout: 10m }}
"#
    )
}

struct Scene {
    db: TestDatabase,
    apps: Vec<TestApp>,
    slack: FakeSlack,
    smtp: SmtpServer,
}

/// Slack and email senders against the fakes.
fn senders(slack: &FakeSlack, smtp: &SmtpServer) -> impl FnOnce(&mut AppState) + use<> {
    let (slack_config, smtp_url) = (slack.config(), smtp.url());
    move |state: &mut AppState| {
        let client = SlackClient::new(&slack_config).expect("slack client");
        state.senders.insert(Channel::Slack, Arc::new(SlackSender(client)));
        state.slack = Some(slack_config);
        let signer = LinkSigner::from_base64(&LinkSigner::generate_key()).expect("link key");
        let mailer = Mailer::new(&EmailConfig { smtp_url, from: "Signoff <signoff@example.com>".into() });
        state.link_signer = Some(signer.clone());
        state.senders.insert(Channel::Email, Arc::new(EmailSender { mailer: mailer.expect("mailer"), signer }));
    }
}

impl Scene {
    /// Two replicas with Slack and email over one database, under `policy`.
    async fn start(backend: Backend, policy: &str) -> Scene {
        let (slack, smtp) = (FakeSlack::start().await, SmtpServer::start().await);
        let (db, first) = TestApp::on_with(backend, senders(&slack, &smtp)).await;
        let second = TestApp::replica_with(db.open().await, &first, senders(&slack, &smtp)).await;
        let (status, body) = first.apply_policy(policy).await;
        assert_eq!(status, 201, "{body}");
        Scene { db, apps: vec![first, second], slack, smtp }
    }

    fn app(&self) -> &TestApp {
        &self.apps[0]
    }

    async fn create(&self, action: &str, summary: &str, args: Value) -> String {
        let (status, body) = self.app().create(json!({"action": action, "summary": summary, "args": args})).await;
        assert_eq!((status, body["group"].as_str()), (201, Some("finance")), "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn notifications(&self, id: &str) -> Vec<Value> {
        let path = format!("/v1/requests/{id}/notifications");
        let (status, body) = send(self.app().get(&path, &self.app().agent_key)).await;
        assert_eq!(status, 200, "{body}");
        body.as_array().unwrap().clone()
    }

    fn posts(&self) -> Vec<SlackCall> {
        self.slack.calls_to("chat.postMessage").into_iter().filter(|c| c.answered == 200).collect()
    }

    fn digest_posts(&self) -> Vec<SlackCall> {
        self.posts().into_iter().filter(|c| c.body["text"].as_str().unwrap_or("").contains(" pending in ")).collect()
    }

    fn digest_mails(&self) -> Vec<ReceivedMail> {
        self.smtp
            .messages()
            .into_iter()
            .filter(|m| m.header("Subject").is_some_and(|s| s.contains("pending in")))
            .collect()
    }

    /// Waits until `count` digests were posted to Slack and mailed.
    async fn digests(&self, count: usize) -> (Vec<SlackCall>, Vec<ReceivedMail>) {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let (posts, mails) = (self.digest_posts(), self.digest_mails());
            if posts.len() >= count && mails.len() >= count {
                return (posts, mails);
            }
            assert!(tokio::time::Instant::now() < deadline, "digests: {posts:#?} {mails:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn a_digest_reaches_each_member_once_per_channel_with_every_pending_request_and_the_total(backend: Backend) {
    let mut scene = Scene::start(backend, &policy("{ every: 4s, urgent_after: 30m }")).await;
    let mut refunds = Vec::new();
    for (n, amount) in [120, 300, 520].into_iter().enumerate() {
        refunds.push(scene.create("refund", &format!("Refund order {n}"), json!({"amount": amount})).await);
    }
    // The rush request's deadline (10 minutes) is nearer than `urgent_after`: asked at once, one by one.
    let rush = scene.create("rush", "Rush payout", json!({"to": "acme"})).await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    while scene.notifications(&rush).await.iter().filter(|n| n["state"] == "sent").count() < 4 {
        assert!(tokio::time::Instant::now() < deadline, "{:#?}", scene.notifications(&rush).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let asked: Vec<String> = scene.posts().iter().map(|c| c.body["channel"].as_str().unwrap().to_string()).collect();
    assert_eq!(asked.len(), 2, "two Slack asks for the urgent request, nothing else yet: {asked:?}");
    assert!(scene.digest_posts().is_empty() && scene.digest_mails().is_empty());
    // No ask per refund before the digest.
    for id in &refunds {
        assert_eq!(scene.notifications(id).await, Vec::<Value>::new(), "no ask for {id} before the digest");
    }

    let (posts, mails) = scene.digests(2).await;
    let mut to: Vec<&str> = posts.iter().map(|c| c.body["channel"].as_str().unwrap()).collect();
    to.sort();
    assert_eq!(to, ["U0CARL", "U0DANA"], "one Slack digest per member");
    let headline = "4 requests pending in finance, total 940 (args.amount), oldest";
    for post in &posts {
        assert!(post.body["text"].as_str().unwrap().starts_with(headline), "{:#}", post.body);
        let blocks = post.body["blocks"].to_string();
        for id in refunds.iter().chain([&rush]) {
            assert!(blocks.contains(&format!("/requests/{id}|")), "{id} listed with its link: {blocks}");
        }
        assert!(blocks.contains("Refund order 2 — refund — 520"), "{blocks}");
        assert!(blocks.contains("\"text\":\"Review all\"") && blocks.contains("/batch?group=finance"), "{blocks}");
    }
    let mut mailed: Vec<String> = mails.iter().map(|m| m.to.join(",")).collect();
    mailed.sort();
    assert_eq!(mailed.len(), 2, "one email digest per member: {mailed:?}");
    assert!(mailed[0].contains("carl@example.com") && mailed[1].contains("dana@example.com"), "{mailed:?}");
    for mail in &mails {
        assert!(mail.header("Subject").unwrap().contains(headline), "{mail:#?}");
        let links = mail.text_links();
        for id in refunds.iter().chain([&rush]) {
            assert!(links.iter().any(|l| l.ends_with(&format!("/requests/{id}"))), "{id}: {links:?}");
        }
        assert!(links.iter().any(|l| l.ends_with("/batch?group=finance")), "{links:?}");
        assert!(mail.html_links().iter().any(|l| l.ends_with("/batch?group=finance")));
    }
    // The digest notifications are filed under the oldest request, sent once each.
    let filed = scene.notifications(&refunds[0]).await;
    assert_eq!(filed.iter().filter(|n| n["purpose"] == "digest").count(), 4, "{filed:#?}");

    // Both replicas stop and a new one starts: the digest just sent is not sent again.
    let keys_from = scene.apps.remove(0);
    let replica = scene.apps.remove(0);
    replica.stop().await;
    let restarted = TestApp::replica_with(scene.db.open().await, &keys_from, senders(&scene.slack, &scene.smtp)).await;
    keys_from.stop().await;
    scene.apps.push(restarted);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!((scene.digest_posts().len(), scene.digest_mails().len()), (2, 2), "no digest sent twice");
    // The next digest lists what is still pending, and only that.
    let decided = &refunds[0];
    let (status, body) =
        scene.app().decide(decided, &scene.app().approver_key, json!({"outcome": "reject", "comment": "no"})).await;
    assert_eq!(status, 200, "{body}");
    let (posts, _) = scene.digests(4).await;
    let latest = &posts[posts.len() - 1].body;
    assert!(latest["text"].as_str().unwrap().starts_with("3 requests pending in finance, total 820"), "{latest:#}");
    assert!(!latest["blocks"].to_string().contains(&format!("/requests/{decided}|")), "{latest:#}");
}

async fn below_min_requests_are_asked_one_by_one_at_the_digest_time(backend: Backend) {
    let scene = Scene::start(backend, &policy("{ every: 3s, min: 3, total: none }")).await;
    let first = scene.create("refund", "Refund one", json!({"amount": 5})).await;
    let second = scene.create("refund", "Refund two", json!({"amount": 7})).await;
    assert!(scene.notifications(&first).await.is_empty() && scene.notifications(&second).await.is_empty());
    // Two pending, fewer than `min`: at the digest time each is asked on its own, and no digest goes out.
    let deadline = tokio::time::Instant::now() + WITHIN;
    for id in [&first, &second] {
        loop {
            let asks = scene.notifications(id).await;
            if asks.len() == 4 && asks.iter().all(|n| n["purpose"] == "ask" && n["state"] == "sent") {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{asks:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let posts = scene.posts();
    assert_eq!(posts.len(), 4, "an ask per request and member on Slack: {posts:#?}");
    assert!(scene.digest_posts().is_empty() && scene.digest_mails().is_empty());
    // A later digest time asks nobody twice.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(scene.notifications(&first).await.len(), 4);
    assert_eq!(scene.posts().len(), 4);
}
