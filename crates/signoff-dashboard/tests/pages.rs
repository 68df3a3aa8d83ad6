//! The follow-up pages through the real app: Expired shows a person's groups (an admin's: all), Review confirms and
//! flags sampled reports through the service (a flag needs a reason, every form the session's CSRF token), a request
//! policy let through is flagged as a miss from its page, and History filters decided requests by outcome, person,
//! rule and day; the queue says who is on call.

mod support;

use serde_json::json;
use signoff_domain::Role;
use signoff_store::NewKey;
use signoff_testkit::{Backend, TestApp, on_every_backend, person};
use support::Browser;

on_every_backend!(
    expired_requests_show_for_their_group_and_for_admins,
    sampled_reports_are_confirmed_or_flagged_with_a_reason,
    a_request_policy_let_through_is_flagged_from_its_page,
    history_filters_by_outcome_person_rule_and_day,
    the_queue_says_who_is_on_call_in_the_persons_rotations,
);

const POLICY: &str = r#"
version: 1
approvers:
  - { id: dana, name: Dana Director, email: dana@example.com, groups: [directors] }
  - { id: mo, name: Mo Moderator, email: mo@example.com, groups: [moderators] }
  - { id: ada, name: Ada Admin, email: ada@example.com, groups: [admins] }
groups:
  directors: { notify: [dashboard] }
  moderators: { notify: [dashboard] }
  admins: { notify: [dashboard] }
defaults: { route: admins, timeout: 24h, on_timeout: reject }
rules:
  - name: vendor-payment
    when: action == "pay_vendor"
    route: directors
    on_timeout: fail
  - name: expenses
    when: action == "expense"
    route: directors
  - name: comment-removal
    when: action == "remove_comment"
    review: { sample: 1.0, group: moderators }
  - name: lookups
    when: action == "lookup"
    decide: approve
"#;

async fn app_with_policy(backend: Backend) -> (signoff_testkit::TestDatabase, TestApp) {
    let (db, app) = TestApp::on(backend).await;
    assert_eq!(app.apply_policy(POLICY).await.0, 201);
    (db, app)
}

async fn create(app: &TestApp, body: serde_json::Value) -> String {
    let (status, created) = app.create(body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_string()
}

async fn signed_in<'a>(app: &'a TestApp, key: &str) -> Browser<'a> {
    let mut browser = Browser::new(app);
    assert_eq!(browser.sign_in(key).await.status, 303);
    browser
}

async fn expired_requests_show_for_their_group_and_for_admins(backend: Backend) {
    let (_db, app) = app_with_policy(backend).await;
    let id = create(&app, json!({"action": "pay_vendor", "args": {"amount": 900}, "summary": "Pay Acme"})).await;
    let waiting = create(&app, json!({"action": "pay_vendor", "summary": "Pay Globex"})).await;
    app.state.store.fire_due_timers(signoff_store::now() + chrono::Duration::hours(25), 100).await.unwrap();
    assert_eq!(status_of(&app, &id).await, "expired");
    let later = create(&app, json!({"action": "pay_vendor", "summary": "Pay Initech"})).await;

    let dana = signed_in(&app, &app.approver_key).await;
    let page = dana.get("/expired").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Pay Acme") && page.body.contains("amount: 900"), "{}", page.body);
    assert!(page.body.contains("rule vendor-payment") && page.body.contains("group directors"));
    assert!(page.body.contains(&format!(r#"href="/requests/{waiting}""#)), "both expired");
    assert!(!page.body.contains(&later), "a pending request is not expired");

    let mo = signed_in(&app, &app.approver("mo").await).await;
    assert!(!mo.get("/expired").await.body.contains("Pay Acme"), "not mo's group");
    let ada = NewKey { approver_id: Some(person("ada")), ..NewKey::new("ada", Role::Admin) };
    let ada = signed_in(&app, &app.key(ada).await).await;
    let everything = ada.get("/expired").await.body;
    assert!(everything.contains("Pay Acme") && everything.contains("every group"), "{everything}");
}

async fn status_of(app: &TestApp, id: &str) -> String {
    let (_, request) = signoff_testkit::send(app.get(&format!("/v1/requests/{id}"), &app.admin_key)).await;
    request["status"].as_str().unwrap().to_string()
}

async fn report(app: &TestApp, summary: &str) -> String {
    create(app, json!({"action": "remove_comment", "mode": "post", "args": {"comment": 7}, "summary": summary})).await
}

async fn sampled_reports_are_confirmed_or_flagged_with_a_reason(backend: Backend) {
    let (_db, app) = app_with_policy(backend).await;
    let (spam, joke) = (report(&app, "Removed spam").await, report(&app, "Removed a joke").await);
    let expense = create(&app, json!({"action": "expense", "summary": "Lunch"})).await;
    let mo = signed_in(&app, &app.approver("mo").await).await;
    let page = mo.get("/review").await.body;
    assert!(page.contains("Removed spam") && page.contains("Removed a joke") && !page.contains("Lunch"), "{page}");
    let csrf = mo.csrf("/review").await;

    let forged = mo.post(&format!("/review/{spam}"), &[("verdict", "confirm")]).await;
    assert_eq!(forged.status, 403, "no CSRF token, no decision");
    let bare_flag = mo.post(&format!("/review/{joke}"), &[("verdict", "flag"), ("csrf", &csrf)]).await;
    assert_eq!(bare_flag.status, 400);
    assert!(bare_flag.body.contains("reason"), "the page says a flag needs a reason: {}", bare_flag.body);
    assert_eq!(status_of(&app, &joke).await, "pending");
    let not_a_report = mo.post(&format!("/review/{expense}"), &[("verdict", "confirm"), ("csrf", &csrf)]).await;
    assert_eq!(not_a_report.status, 404, "only sampled reports are reviewed here");
    assert_eq!(status_of(&app, &expense).await, "pending");

    let confirmed = mo.post(&format!("/review/{spam}"), &[("verdict", "confirm"), ("csrf", &csrf)]).await;
    assert_eq!((confirmed.status, confirmed.location.clone()), (303, format!("/review?done={spam}")));
    assert!(mo.get(&confirmed.location).await.body.contains("Confirmed “Removed spam”"));
    let flag =
        [("verdict", "flag"), ("csrf", &csrf), ("reason", "not_spam"), ("comment", "It was not spam"), ("undo", "yes")];
    let flagged = mo.post(&format!("/review/{joke}"), &flag).await;
    let after = mo.get(&flagged.location).await.body;
    assert!(after.contains("Flagged “Removed a joke”: “not_spam”. The agent is told to undo it."), "{after}");
    assert!(!after.contains(r#"id="report-"#), "nothing waits any more");
    let (_, flagged) = signoff_testkit::send(app.get(&format!("/v1/requests/{joke}"), &app.agent_key)).await;
    assert_eq!(
        (flagged["status"].as_str(), flagged["decision"]["comment"].as_str()),
        (Some("rejected"), Some("It was not spam"))
    );
    let review = &flagged["review"];
    assert_eq!(
        (review["verdict"].as_str(), review["reason"].as_str(), review["undo"].as_bool(), review["channel"].as_str()),
        (Some("flagged"), Some("not_spam"), Some(true), Some("dashboard"))
    );
    let (_, confirmed) = signoff_testkit::send(app.get(&format!("/v1/requests/{spam}"), &app.agent_key)).await;
    assert_eq!(confirmed["review"]["verdict"], "confirmed");
    assert_eq!(status_of(&app, &spam).await, "approved");

    let dana = signed_in(&app, &app.approver_key).await;
    let another = report(&app, "Removed a link").await;
    assert!(!dana.get("/review").await.body.contains("Removed a link"), "not dana's group");
    let csrf = dana.csrf("/review").await;
    let refused = dana.post(&format!("/review/{another}"), &[("verdict", "confirm"), ("csrf", &csrf)]).await;
    assert_eq!(refused.status, 403, "the service's group rule holds here too: {}", refused.body);
}

async fn a_request_policy_let_through_is_flagged_from_its_page(backend: Backend) {
    let (_db, app) = app_with_policy(backend).await;
    let lookup = create(&app, json!({"action": "lookup", "summary": "Looked up c_42"})).await;
    let expense = create(&app, json!({"action": "expense", "summary": "Lunch"})).await;
    assert_eq!(app.decide(&expense, &app.approver_key, json!({"outcome": "approve"})).await.0, 200);
    let mo = signed_in(&app, &app.approver("mo").await).await;

    let history = mo.get("/history").await.body;
    assert!(history.contains(&format!(r#"href="/requests/{lookup}#review""#)), "policy let it through: {history}");
    assert!(!history.contains(&format!(r#"href="/requests/{expense}#review""#)), "dana approved this one");
    assert!(!mo.get(&format!("/requests/{expense}")).await.body.contains(r#"id="flag-form""#));
    let page = mo.get(&format!("/requests/{lookup}")).await.body;
    assert!(page.contains(r#"id="flag-form""#), "{page}");
    let csrf = mo.csrf(&format!("/requests/{lookup}")).await;

    let forged = mo.post(&format!("/requests/{lookup}/flag"), &[("reason", "wrong_customer")]).await;
    assert_eq!(forged.status, 403, "no CSRF token, no flag");
    let blank = mo.post(&format!("/requests/{lookup}/flag"), &[("csrf", &csrf), ("reason", " ")]).await;
    assert_eq!(blank.status, 400);
    assert!(blank.body.contains(r#"id="flag-error""#) && blank.body.contains("reason"), "{}", blank.body);
    let flag = [("csrf", csrf.as_str()), ("reason", "wrong_customer"), ("comment", "c_24 was meant")];
    let flagged = mo.post(&format!("/requests/{lookup}/flag"), &flag).await;
    assert_eq!((flagged.status, flagged.location.clone()), (303, format!("/requests/{lookup}")));
    let page = mo.get(&flagged.location).await.body;
    assert!(page.contains("flagged by mo via dashboard") && page.contains("A miss of the gate"), "{page}");
    assert!(!page.contains(r#"id="flag-form""#), "one review per request");
    let (_, request) = signoff_testkit::send(app.get(&format!("/v1/requests/{lookup}"), &app.agent_key)).await;
    assert_eq!((request["status"].as_str(), request["review"]["miss"].as_bool()), (Some("approved"), Some(true)));
    assert!(mo.get("/history").await.body.contains("flagged: a miss of the gate"));

    let again = mo.post(&format!("/requests/{lookup}/flag"), &flag).await;
    assert_eq!(again.status, 409, "the service refuses a second review: {}", again.body);
}

async fn history_filters_by_outcome_person_rule_and_day(backend: Backend) {
    let (_db, app) = app_with_policy(backend).await;
    let lunch = create(&app, json!({"action": "expense", "summary": "Team lunch"})).await;
    let taxi = create(&app, json!({"action": "expense", "summary": "Late taxi"})).await;
    create(&app, json!({"action": "expense", "summary": "Still open"})).await;
    assert_eq!(app.decide(&lunch, &app.approver_key, json!({"outcome": "approve"})).await.0, 200);
    let rejected = json!({"outcome": "reject", "comment": "Take the bus"});
    assert_eq!(app.decide(&taxi, &app.approver_key, rejected).await.0, 200);
    let dana = signed_in(&app, &app.approver_key).await;

    let all = dana.get("/history").await.body;
    assert!(all.contains("Team lunch") && all.contains("Late taxi") && !all.contains("Still open"), "{all}");
    assert!(all.find("Late taxi") < all.find("Team lunch"), "newest decision first");
    assert!(all.contains("by Dana Director via api") && all.contains("“Take the bus”"), "{all}");
    let rejected = dana.get("/history?outcome=rejected").await.body;
    assert!(rejected.contains("Late taxi") && !rejected.contains("Team lunch"), "{rejected}");
    assert!(!dana.get("/history?person=mo").await.body.contains("Team lunch"), "mo decided nothing");
    assert!(dana.get("/history?person=dana&rule=expenses").await.body.contains("Team lunch"));
    assert!(!dana.get("/history?rule=vendor-payment").await.body.contains("Team lunch"));
    let today = signoff_store::now().date_naive();
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let since_today = dana.get(&format!("/history?from={}&to={}", day(today), day(today))).await.body;
    assert!(since_today.contains("Team lunch"), "today's decisions are in today's range");
    let yesterday = day(today.pred_opt().unwrap());
    assert!(!dana.get(&format!("/history?to={yesterday}")).await.body.contains("Team lunch"));
    let backwards = dana.get(&format!("/history?from={}&to={yesterday}", day(today))).await;
    assert_eq!(backwards.status, 400);
    assert!(backwards.body.contains("before it starts"), "{}", backwards.body);
}

async fn the_queue_says_who_is_on_call_in_the_persons_rotations(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    // Half an hour into the first shift (mo's) of an hourly rotation.
    let starts = chrono::Utc::now() - chrono::Duration::minutes(30);
    let until = (starts + chrono::Duration::hours(1)).format("%Y-%m-%d %H:%M UTC").to_string();
    let policy = format!(
        r#"
version: 1
approvers:
  - {{ id: dana, name: Dana Director, groups: [directors, oncall] }}
  - {{ id: mo, name: Mo Moderator, groups: [oncall] }}
  - {{ id: ed, name: Ed, groups: [directors] }}
groups:
  directors: {{ notify: [dashboard] }}
  oncall: {{ notify: [dashboard], rotation: {{ members: [mo, dana], every: 1h, starts: "{}" }} }}
defaults: {{ route: directors, timeout: 24h, on_timeout: reject }}
"#,
        starts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert_eq!(app.apply_policy(&policy).await.0, 201);

    let dana = signed_in(&app, &app.approver_key).await.get("/").await.body;
    let line = |who: &str| format!("<strong>oncall</strong>: {who} on call until <time datetime=");
    assert!(dana.contains(&line("Mo Moderator is")) && dana.contains(", then Dana Director</li>"), "{dana}");
    assert!(dana.contains(&until), "the hand-over ({until}) is shown: {dana}");
    let mo = signed_in(&app, &app.approver("mo").await).await.get("/").await.body;
    assert!(mo.contains(&line("you are")), "{mo}");
    let ed = signed_in(&app, &app.approver("ed").await).await.get("/").await.body;
    assert!(!ed.contains("id=\"on-call\""), "ed is in no rotation: {ed}");
}
