//! The dashboard's server-side rules, through the real app: signing in by key, sessions that end (signed out,
//! expired, key revoked, person gone from the policy), and decisions that need the session's CSRF token and a
//! person who may decide.

mod support;

use serde_json::json;
use sha2::{Digest, Sha256};
use signoff_store::{DashboardSession, NewKey};
use signoff_testkit::{Backend, TestApp, on_every_backend, person};
use support::Browser;

on_every_backend!(
    signing_in_by_key_starts_a_session_and_bad_keys_are_refused,
    a_decision_needs_the_session_csrf_token,
    a_person_outside_the_group_sees_no_buttons_and_cannot_decide,
    an_expired_session_is_signed_out,
    revoking_the_key_or_leaving_the_policy_ends_the_session,
    a_signed_out_session_cannot_act,
    failed_sign_ins_are_rate_limited,
    an_emailed_link_signs_in_once,
    a_sign_in_link_that_is_forged_or_expired_signs_no_one_in,
    sign_in_forms_from_another_site_are_refused,
    a_question_is_answered_on_its_page,
);

const POLICY: &str = r#"
version: 1
approvers:
  - { id: dana, name: Dana Director, email: dana@example.com, groups: [directors] }
  - { id: hugo, name: Hugo HR, email: hugo@example.com, groups: [hr] }
  - { id: ada, name: Ada Admin, email: ada@example.com, groups: [admins] }
groups:
  directors: { notify: [dashboard] }
  hr: { notify: [dashboard] }
  admins: { notify: [dashboard] }
defaults: { route: admins, timeout: 24h, on_timeout: reject }
rules:
  - name: expenses
    when: action == "expense"
    route: directors
"#;

async fn create_expense(app: &TestApp) -> String {
    let (status, created) =
        app.create(json!({"action": "expense", "args": {"amount": 120}, "summary": "Team lunch"})).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_string()
}

async fn status_of(app: &TestApp, id: &str) -> String {
    let (_, request) = signoff_testkit::send(app.get(&format!("/v1/requests/{id}"), &app.admin_key)).await;
    request["status"].as_str().unwrap().to_string()
}

async fn signing_in_by_key_starts_a_session_and_bad_keys_are_refused(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let mut browser = Browser::new(&app);
    let before = browser.get("/").await;
    assert_eq!((before.status, before.location.as_str()), (303, "/sign-in?next=%2F"), "the queue asks to sign in");

    let wrong = browser.sign_in("so_approver_not_a_key").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("That key is not valid"), "{}", wrong.body);
    let agent = browser.sign_in(&app.agent_key).await;
    assert_eq!(agent.status, 403);
    assert!(agent.body.contains("cannot sign in to the dashboard, which is for people"), "{}", agent.body);
    let unbound = app.key(NewKey::new("ops", signoff_domain::Role::Admin)).await;
    let unbound = browser.sign_in(&unbound).await;
    assert!(unbound.status == 403 && unbound.body.contains("bound to no person"), "{}", unbound.body);
    assert!(browser.cookie.is_none(), "no refusal starts a session");

    let signed_in = browser.sign_in(&app.approver_key).await;
    assert_eq!((signed_in.status, signed_in.location.as_str()), (303, "/"));
    assert!(signed_in.set_cookie.contains("HttpOnly") && signed_in.set_cookie.contains("SameSite=Lax"));
    assert!(!signed_in.set_cookie.contains("Secure"), "plain http: not Secure");
    let queue = browser.get("/").await;
    assert_eq!(queue.status, 200);
    assert!(queue.body.contains("<h1>Queue</h1>") && queue.body.contains("dana"), "{}", queue.body);
}

async fn a_decision_needs_the_session_csrf_token(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let id = create_expense(&app).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.approver_key).await;
    let path = format!("/requests/{id}/decide");

    let without = browser.post(&path, &[("verdict", "approve")]).await;
    assert_eq!(without.status, 403);
    assert!(without.body.contains("security token is missing or wrong"), "{}", without.body);
    let forged = browser.post(&path, &[("verdict", "approve"), ("csrf", "guessed")]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(status_of(&app, &id).await, "pending", "a forged form decides nothing");

    let csrf = browser.csrf(&format!("/requests/{id}")).await;
    let approved = browser.post(&path, &[("verdict", "approve"), ("csrf", &csrf)]).await;
    assert_eq!((approved.status, approved.location), (303, format!("/requests/{id}")));
    let (_, request) = signoff_testkit::send(app.get(&format!("/v1/requests/{id}"), &app.admin_key)).await;
    assert_eq!(request["status"], "approved");
    assert_eq!(request["decision"]["by"]["channel"], "dashboard", "{request}");
    assert_eq!(request["decision"]["by"]["approver_id"], "dana");
}

async fn a_person_outside_the_group_sees_no_buttons_and_cannot_decide(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    assert_eq!(app.apply_policy(POLICY).await.0, 201);
    let id = create_expense(&app).await;
    let hugo = app.approver("hugo").await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&hugo).await;

    let page = browser.get(&format!("/requests/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains(r#"id="approve""#) && !page.body.contains(r#"id="reject""#), "no buttons");
    assert!(page.body.contains("You are not in the group `directors`"), "{}", page.body);
    assert!(!browser.get("/").await.body.contains("Team lunch"), "not in hugo's queue");

    let csrf = browser.csrf("/").await;
    let refused = browser.post(&format!("/requests/{id}/decide"), &[("verdict", "approve"), ("csrf", &csrf)]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("directors"), "the refusal says why: {}", refused.body);
    assert_eq!(status_of(&app, &id).await, "pending");

    let mut dana = Browser::new(&app);
    dana.sign_in(&app.approver_key).await;
    let queue = dana.get("/").await.body;
    assert!(queue.contains("Team lunch") && queue.contains("amount: 120"), "{queue}");
    assert!(dana.get(&format!("/requests/{id}")).await.body.contains(r#"id="approve""#));
}

async fn an_expired_session_is_signed_out(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let token = "an-expired-session-token";
    let hour = chrono::Duration::hours(1);
    let now = signoff_store::now();
    let session = DashboardSession {
        token_hash: Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect(),
        person: person("dana"),
        key_id: None,
        csrf_token: "csrf".into(),
        created_at: now - hour * 13,
        expires_at: now - hour,
    };
    app.state.store.create_session(&session).await.unwrap();
    let mut browser = Browser::new(&app);
    browser.cookie = Some(format!("{}={token}", signoff_dashboard::SESSION_COOKIE));
    assert_eq!(browser.get("/").await.status, 303, "sent to sign in");
    let id = create_expense(&app).await;
    let refused = browser.post(&format!("/requests/{id}/decide"), &[("verdict", "approve"), ("csrf", "csrf")]).await;
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("You are not signed in"), "{}", refused.body);
}

async fn revoking_the_key_or_leaving_the_policy_ends_the_session(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let created = app.state.store.create_key(NewKey::approver(&person("dana")), "test").await.unwrap();
    let mut by_key = Browser::new(&app);
    by_key.sign_in(&created.secret).await;
    assert_eq!(by_key.get("/").await.status, 200);
    app.state.store.revoke_key(&created.key.id, "test").await.unwrap();
    assert_eq!(by_key.get("/").await.status, 303, "a revoked key ends its sessions");

    let mut hugo = Browser::new(&app);
    hugo.sign_in(&app.approver("hugo").await).await;
    assert_eq!(hugo.get("/").await.status, 200, "under the built-in policy any approver may sign in");
    assert_eq!(
        app.apply_policy(
            &POLICY.replace("  - { id: hugo, name: Hugo HR, email: hugo@example.com, groups: [hr] }\n", "")
        )
        .await
        .0,
        201
    );
    assert_eq!(hugo.get("/").await.status, 303, "gone from the policy: signed out");
    let refused = Browser::new(&app).sign_in(&app.approver("hugo").await).await;
    assert!(refused.status == 403 && refused.body.contains("not an approver in the policy"), "{}", refused.body);
}

async fn a_signed_out_session_cannot_act(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let id = create_expense(&app).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.approver_key).await;
    let csrf = browser.csrf(&format!("/requests/{id}")).await;
    let refused = browser.post("/sign-out", &[("csrf", "wrong")]).await;
    assert_eq!(refused.status, 403, "signing out needs the token too");
    let out = browser.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!((out.status, out.location.as_str()), (303, "/sign-in"));
    assert!(out.set_cookie.contains("Max-Age=0"), "{}", out.set_cookie);
    let after = browser.post(&format!("/requests/{id}/decide"), &[("verdict", "approve"), ("csrf", &csrf)]).await;
    assert_eq!(after.status, 401, "the old cookie is dead");
    assert_eq!(status_of(&app, &id).await, "pending");
}

async fn failed_sign_ins_are_rate_limited(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let mut browser = Browser::new(&app);
    let burst = signoff_dashboard::DashboardSettings::default().sign_in_burst;
    for _ in 0..burst {
        assert_eq!(browser.sign_in("so_approver_guess").await.status, 401);
    }
    let limited = browser.sign_in(&app.approver_key).await;
    assert_eq!(limited.status, 429, "even a good key waits once the failures are used up");
    assert!(limited.body.contains("Too many failed sign-ins"), "{}", limited.body);
}

/// An app with email configured (a real SMTP listener) and the test policy.
async fn with_email(backend: Backend) -> (signoff_testkit::TestDatabase, TestApp, signoff_testkit::smtp::SmtpServer) {
    let smtp = signoff_testkit::smtp::SmtpServer::start().await;
    let smtp_url = smtp.url();
    let (db, app) = TestApp::on_with(backend, move |state| {
        let config = signoff_notify::email::EmailConfig { smtp_url, from: "Signoff <signoff@example.com>".into() };
        state.mailer = Some(signoff_notify::email::Mailer::new(&config).expect("mailer"));
        let key = signoff_notify::links::LinkSigner::generate_key();
        state.link_signer = Some(signoff_notify::links::LinkSigner::from_base64(&key).expect("link key"));
    })
    .await;
    assert_eq!(app.apply_policy(POLICY).await.0, 201);
    (db, app, smtp)
}

/// The sign-in link's token in a mail.
fn token_in(mail: &signoff_testkit::smtp::ReceivedMail) -> String {
    let link = mail.text_links().into_iter().find(|l| l.contains("/sign-in/link?token=")).expect("a sign-in link");
    let query = link.split_once('?').unwrap().1;
    let token = query.split('&').find_map(|pair| pair.strip_prefix("token=")).unwrap();
    url::form_urlencoded::parse(format!("t={token}").as_bytes()).next().unwrap().1.into_owned()
}

async fn an_emailed_link_signs_in_once(backend: Backend) {
    let (_db, app, smtp) = with_email(backend).await;
    let browser = Browser::new(&app);
    let form = browser.get("/sign-in").await;
    assert!(form.body.contains("Email me a link"), "{}", form.body);

    // Known and unknown addresses get the same answer; only the known one gets mail.
    let unknown = browser.post("/sign-in/email", &[("email", "nobody@example.com"), ("next", "/")]).await;
    let known = browser.post("/sign-in/email", &[("email", "Dana@Example.com"), ("next", "/")]).await;
    assert_eq!((unknown.status, known.status), (200, 200));
    let said = |body: &str| body.contains("If that address belongs to an approver, a sign-in link is on its way");
    assert!(said(&unknown.body) && said(&known.body), "{}", known.body);
    let mail = smtp.wait_for(1, std::time::Duration::from_secs(10)).await;
    assert!(mail.to.iter().any(|to| to.contains("dana@example.com")), "{mail:#?}");
    assert_eq!(mail.header("Subject").as_deref(), Some("Sign in to Signoff"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(smtp.messages().len(), 1, "no mail for an unknown address");

    // Following the link signs no one in (a scanner may fetch it); its form does, once.
    let token = token_in(&mail);
    let page = browser.get(&format!("/sign-in/link?token={}", urlencode(&token))).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Sign in as Dana Director") && page.set_cookie.is_empty(), "{}", page.body);
    let mut signed_in = Browser::new(&app);
    let used = signed_in.post("/sign-in/link", &[("token", &token), ("next", "/")]).await;
    assert_eq!((used.status, used.location.as_str()), (303, "/"), "{}", used.body);
    signed_in.cookie = used.set_cookie.split(';').next().map(String::from);
    let queue = signed_in.get("/").await;
    assert!(queue.status == 200 && queue.body.contains("Dana Director"), "{}", queue.body);

    let again = browser.post("/sign-in/link", &[("token", &token), ("next", "/")]).await;
    assert_eq!(again.status, 410);
    assert!(again.body.contains("already used") && again.set_cookie.is_empty(), "{}", again.body);
    let page = browser.get(&format!("/sign-in/link?token={}", urlencode(&token))).await;
    assert!(page.status == 410 && page.body.contains("already used"), "{}", page.body);
}

async fn a_sign_in_link_that_is_forged_or_expired_signs_no_one_in(backend: Backend) {
    use signoff_notify::links::{LinkClaims, SignInClaims};
    let (_db, app, _smtp) = with_email(backend).await;
    let browser = Browser::new(&app);
    let signer = app.state.link_signer.clone().unwrap();
    let expired = signer.sign_sign_in(&SignInClaims {
        approver_id: person("dana"),
        nonce: LinkClaims::new_nonce(),
        expires_at: signoff_store::now() - chrono::Duration::seconds(1),
    });
    let answer = browser.post("/sign-in/link", &[("token", &expired)]).await;
    assert!(answer.status == 400 && answer.body.contains("has expired"), "{}", answer.body);
    let other = signoff_notify::links::LinkSigner::from_base64(&signoff_notify::links::LinkSigner::generate_key());
    let forged = other.unwrap().sign_sign_in(&SignInClaims {
        approver_id: person("dana"),
        nonce: LinkClaims::new_nonce(),
        expires_at: signoff_store::now() + chrono::Duration::minutes(5),
    });
    for token in [forged.as_str(), "garbage"] {
        let answer = browser.post("/sign-in/link", &[("token", token)]).await;
        assert!(answer.status == 400 && answer.body.contains("not a valid sign-in link"), "{}", answer.body);
        assert!(answer.set_cookie.is_empty());
    }
    // A person no longer in the policy: the genuine link signs no one in.
    let gone = signer.sign_sign_in(&SignInClaims {
        approver_id: person("zoe"),
        nonce: LinkClaims::new_nonce(),
        expires_at: signoff_store::now() + chrono::Duration::minutes(5),
    });
    let answer = browser.post("/sign-in/link", &[("token", &gone)]).await;
    assert!(answer.status == 403 && answer.body.contains("no longer an approver"), "{}", answer.body);
}

async fn sign_in_forms_from_another_site_are_refused(backend: Backend) {
    let (_db, app, smtp) = with_email(backend).await;
    let browser = Browser::new(&app);
    let from_elsewhere = |path: &str, form: &[(&str, &str)]| {
        let request = browser.http.post(format!("{}{path}", app.url)).header("origin", "https://evil.example");
        browser.send(request.form(form))
    };
    let by_key = from_elsewhere("/sign-in", &[("key", &app.approver_key)]).await;
    assert!(by_key.status == 403 && by_key.set_cookie.is_empty(), "{}", by_key.body);
    assert!(by_key.body.contains("sent from another site"), "{}", by_key.body);
    let by_email = from_elsewhere("/sign-in/email", &[("email", "dana@example.com")]).await;
    assert_eq!(by_email.status, 403);
    // The same form from this site's own page works.
    let own = browser.http.post(format!("{}/sign-in", app.url)).header("origin", &app.url);
    let answer = browser.send(own.form(&[("key", app.approver_key.as_str())])).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(smtp.messages().is_empty(), "no link mailed for a refused form");
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn a_question_is_answered_on_its_page(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    assert_eq!(app.apply_policy(POLICY).await.0, 201);
    let question = json!({"action": "expense", "kind": "question", "question": "Which budget pays for the offsite?",
                          "options": ["travel", "food"]});
    let (status, asked) = app.create(question).await;
    assert_eq!(status, 201, "{asked}");
    let id = asked["id"].as_str().unwrap().to_string();
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.approver_key).await;
    let page = browser.get(&format!("/requests/{id}")).await;
    assert!(page.body.contains("Which budget pays for the offsite?"), "{}", page.body);
    assert!(
        page.body.contains(r#"name="text" value="food""#) && !page.body.contains(r#"id="approve""#),
        "{}",
        page.body
    );

    let path = format!("/requests/{id}/answer");
    let without = browser.post(&path, &[("text", "food")]).await;
    assert_eq!(without.status, 403, "no CSRF token: {}", without.body);
    let csrf = browser.csrf(&format!("/requests/{id}")).await;
    let wrong = browser.post(&path, &[("csrf", &csrf), ("text", "toys")]).await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("The answer must be one of: travel, food."), "{}", wrong.body);
    let answered = browser.post(&path, &[("csrf", &csrf), ("text", "food")]).await;
    assert_eq!((answered.status, answered.location.as_str()), (303, format!("/requests/{id}").as_str()));
    assert_eq!(status_of(&app, &id).await, "answered");
    let page = browser.get(&format!("/requests/{id}")).await;
    assert!(page.body.contains("answered by dana via dashboard") && page.body.contains("food"), "{}", page.body);
}
