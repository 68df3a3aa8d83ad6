//! The admin pages through the real app on both backends: only sessions signed in with an admin key bound to a
//! person see them, every admin form needs the session's CSRF token, and each page shows what the API and the CLI
//! would (policy versions and their diff, a draft replayed against history, keys, the audit chain).

use serde_json::json;
use signoff_domain::Role;
use signoff_domain::checkpoint::CheckpointKey;
use signoff_store::NewKey;
use signoff_testkit::{Backend, TestApp, on_every_backend};

mod support;
use support::Browser;

on_every_backend!(
    a_non_admin_sees_no_admin_entry_and_is_refused_everywhere,
    every_admin_form_needs_the_session_csrf_token,
    a_created_key_is_shown_once_and_works_until_revoked,
    the_policy_page_diffs_two_versions_and_replays_a_draft,
    the_audit_page_verifies_the_chain_lists_checkpoints_and_exports_it,
);

const POLICY: &str = r#"version: 1
approvers:
  - { id: dana, name: Dana Director, email: dana@example.com, groups: [directors] }
  - { id: ada, name: Ada Admin, email: ada@example.com, groups: [admins] }
groups:
  directors: { notify: [dashboard] }
  admins: { notify: [dashboard] }
defaults: { route: admins, timeout: 24h, on_timeout: reject }
rules:
  - name: expenses
    when: action == "expense"
    route: directors
"#;

/// Every admin page, and every admin form.
const ADMIN_PAGES: [&str; 5] = ["/admin", "/admin/policy", "/admin/keys", "/admin/audit", "/admin/audit/verify"];

async fn signed_in<'a>(app: &'a TestApp, key: &str) -> Browser<'a> {
    let mut browser = Browser::new(app);
    assert_eq!(browser.sign_in(key).await.status, 303);
    browser
}

/// The text of the element with `id`: the rest of its line, without markup.
fn text_of(page: &str, id: &str) -> String {
    let at = page.find(&format!(r#"id="{id}""#)).unwrap_or_else(|| panic!("no #{id} in {page}"));
    let start = at + page[at..].find('>').unwrap() + 1;
    let line = page[start..].lines().next().unwrap_or_default();
    let mut in_tag = false;
    line.chars()
        .filter(|&c| {
            in_tag = (in_tag || c == '<') && c != '>';
            !in_tag && c != '>'
        })
        .collect()
}

async fn a_non_admin_sees_no_admin_entry_and_is_refused_everywhere(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let dana = signed_in(&app, &app.approver_key).await;
    let queue = dana.get("/").await.body;
    assert!(!queue.contains(">Admin</a>"), "no Admin entry for an approver: {queue}");
    for path in ADMIN_PAGES {
        let refused = dana.get(path).await;
        assert_eq!(refused.status, 403, "{path}");
        assert!(refused.body.contains("The admin pages are for admins"), "{path}: {}", refused.body);
    }
    let csrf = dana.csrf("/").await;
    let keys_before = app.state.store.keys().await.unwrap().len();
    let create = [("csrf", csrf.as_str()), ("name", "sneaky"), ("role", "admin"), ("approver", "dana")];
    assert_eq!(dana.post("/admin/keys", &create).await.status, 403);
    let admin_id = app.state.store.keys().await.unwrap().into_iter().find(|k| k.role == Role::Admin).unwrap().id;
    let revoke = dana.post(&format!("/admin/keys/{admin_id}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!(revoke.status, 403);
    let test = dana.post("/admin/policy/test", &[("csrf", &csrf), ("draft", POLICY)]).await;
    assert_eq!(test.status, 403);
    let keys = app.state.store.keys().await.unwrap();
    assert_eq!(keys.len(), keys_before, "no key was created");
    assert!(keys.iter().all(|key| !key.is_revoked()), "no key was revoked");

    let unbound = app.key(NewKey::new("ops", Role::Admin)).await;
    assert_eq!(Browser::new(&app).sign_in(&unbound).await.status, 403, "an admin bound to no one cannot sign in");
    let ada = signed_in(&app, &app.admin_key).await;
    assert!(ada.get("/").await.body.contains(r#"<a href="/admin/policy">Admin</a>"#), "the admin sees the entry");
    for path in ADMIN_PAGES {
        let shown = ada.get(path).await;
        assert!(matches!(shown.status, 200 | 303), "{path}: {}", shown.status);
    }
}

async fn every_admin_form_needs_the_session_csrf_token(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let ada = signed_in(&app, &app.admin_key).await;
    let dana_id = app.state.store.keys().await.unwrap().into_iter().find(|k| k.role == Role::Approver).unwrap().id;
    let forms: [(String, Vec<(&str, &str)>); 3] = [
        ("/admin/keys".into(), vec![("name", "bot2"), ("role", "agent")]),
        (format!("/admin/keys/{dana_id}/revoke"), vec![]),
        ("/admin/policy/test".into(), vec![("draft", POLICY), ("since", "30d")]),
    ];
    for (path, fields) in &forms {
        for csrf in [None, Some("guessed")] {
            let mut form = fields.clone();
            form.extend(csrf.map(|token| ("csrf", token)));
            let refused = ada.post(path, &form).await;
            assert_eq!(refused.status, 403, "{path} with {csrf:?}");
            assert!(refused.body.contains("security token is missing or wrong"), "{path}: {}", refused.body);
        }
    }
    let keys = app.state.store.keys().await.unwrap();
    assert_eq!(keys.len(), 3, "no key was created");
    assert!(keys.iter().all(|key| !key.is_revoked()), "no key was revoked");

    let csrf = ada.csrf("/admin/keys").await;
    let (path, fields) = &forms[0];
    let mut form = fields.clone();
    form.push(("csrf", &csrf));
    assert_eq!(ada.post(path, &form).await.status, 201, "with the token, the same form works");
}

async fn a_created_key_is_shown_once_and_works_until_revoked(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let ada = signed_in(&app, &app.admin_key).await;
    let csrf = ada.csrf("/admin/keys").await;

    let refused = ada.post("/admin/keys", &[("csrf", &csrf), ("name", "hugo"), ("role", "approver")]).await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("an approver key needs --approver"), "the store's rule, in words: {}", refused.body);
    assert!(refused.body.contains(r#"value="hugo""#), "the form keeps what was typed");

    let form = [("csrf", csrf.as_str()), ("name", "hugo-laptop"), ("role", "approver"), ("approver", "hugo")];
    let created = ada.post("/admin/keys", &form).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = text_of(&created.body, "new-secret");
    assert!(secret.starts_with("so_approver_"), "{secret}");
    let (status, _) = signoff_testkit::send(app.get("/v1/policy", &secret)).await;
    assert_eq!(status, 200, "the new key works");
    let key = app.state.store.keys().await.unwrap().into_iter().find(|k| k.name == "hugo-laptop").unwrap();
    assert_eq!(key.approver_id.as_ref().map(|p| p.as_str()), Some("hugo"));

    let list = ada.get("/admin/keys").await.body;
    assert!(list.contains("hugo-laptop") && list.contains(&key.id), "{list}");
    assert!(!list.contains(&secret), "the secret is never shown again");

    let confirm = ada.get(&format!("/admin/keys/{}/revoke", key.id)).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("Revoke the key “hugo-laptop”?"), "{}", confirm.body);
    assert!(
        !app.state.store.keys().await.unwrap().iter().any(|k| k.id == key.id && k.is_revoked()),
        "asking revokes nothing"
    );
    let revoked = ada.post(&format!("/admin/keys/{}/revoke", key.id), &[("csrf", &csrf)]).await;
    assert_eq!((revoked.status, revoked.location.as_str()), (303, format!("/admin/keys?revoked={}", key.id).as_str()));
    let after = ada.get(&revoked.location).await.body;
    assert!(after.contains("Key “hugo-laptop” is revoked"), "{after}");
    let (status, _) = signoff_testkit::send(app.get("/v1/policy", &secret)).await;
    assert_eq!(status, 401, "a revoked key is refused");
    let missing = ada.post("/admin/keys/key_nothere/revoke", &[("csrf", &csrf)]).await;
    assert!(missing.status == 404 && missing.body.contains("There is no key `key_nothere`"), "{}", missing.body);
}

async fn the_policy_page_diffs_two_versions_and_replays_a_draft(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    assert_eq!(app.apply_policy(POLICY).await.0, 201);
    assert_eq!(app.apply_policy(&POLICY.replace("route: directors\n", "route: admins\n")).await.0, 201);
    for amount in [120, 80] {
        let (status, body) = app.create(json!({"action": "expense", "args": {"amount": amount}})).await;
        assert_eq!(status, 201, "{body}");
    }
    let ada = signed_in(&app, &app.admin_key).await;

    let page = ada.get("/admin/policy?from=1&to=2").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"<tr class="removed"><td>12</td><td></td>"#), "{}", page.body);
    assert!(page.body.contains("route: directors</td></tr>") && page.body.contains("route: admins</td></tr>"));
    assert!(page.body.contains(r#"<tr class="added"><td></td><td>12</td>"#), "{}", page.body);
    assert!(page.body.contains("Version 2") && page.body.contains("Version 1"));
    let same = ada.get("/admin/policy?from=2&to=2").await.body;
    assert!(same.contains("The two versions have the same lines"), "{same}");
    assert_eq!(ada.get("/admin/policy?from=1&to=9").await.status, 404);

    let csrf = ada.csrf("/admin/policy").await;
    let draft = POLICY.replace("route: directors\n", "decide: approve\n");
    let tested = ada.post("/admin/policy/test", &[("csrf", &csrf), ("draft", &draft), ("since", "30d")]).await;
    assert_eq!(tested.status, 200, "{}", tested.body);
    assert!(tested.body.contains("<strong>2 of 2 requests</strong> from the last 30d"), "{}", tested.body);
    assert!(tested.body.contains("<td>person (admins)</td><td>auto-approve</td><td>2<br>"), "{}", tested.body);
    let applied = app.state.policy.current();
    assert_eq!(applied.version(), 2, "testing applies nothing");

    let invalid = draft.replace("decide: approve", "decide: approve\n    route: nowhere");
    let refused = ada.post("/admin/policy/test", &[("csrf", &csrf), ("draft", &invalid)]).await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("The draft is not a valid policy"), "{}", refused.body);
    assert!(refused.body.contains("<li>Line "), "errors name their line: {}", refused.body);
    let bad_since = ada.post("/admin/policy/test", &[("csrf", &csrf), ("draft", &draft), ("since", "soon")]).await;
    assert!(bad_since.status == 400 && bad_since.body.contains("is not a time span"), "{}", bad_since.body);
}

async fn the_audit_page_verifies_the_chain_lists_checkpoints_and_exports_it(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    app.create(json!({"action": "expense", "args": {"amount": 5}})).await;
    let key = CheckpointKey::generate();
    let checkpoint = signoff_server::checkpoints::write_checkpoint(app.state.store.as_ref(), &key).await.unwrap();
    let checkpoint = checkpoint.expect("the log has events");
    let ada = signed_in(&app, &app.admin_key).await;

    let page = ada.get("/admin/audit").await.body;
    assert!(
        page.contains(&format!("<strong>Event {}</strong>", checkpoint.seq)) && page.contains(&checkpoint.head_hash)
    );
    assert!(!page.contains(r#"id="verification""#), "verifying is asked for");
    let verified = ada.get("/admin/audit/verify").await.body;
    let (_, expected) = signoff_testkit::send(app.get("/v1/audit/verify", &app.admin_key)).await;
    let words = format!("all {} events check out", expected["events"]);
    assert!(text_of(&verified, "verification").contains(&words), "{verified}");

    let export = ada.get("/admin/audit/export").await;
    assert_eq!(export.status, 200);
    assert_eq!(export.headers["content-type"], "application/jsonl");
    assert!(
        export.headers["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"signoff-audit-")
    );
    let lines: Vec<serde_json::Value> = export.body.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let stored = app.state.store.events_after(0, 10_000, None).await.unwrap();
    assert_eq!(lines.len(), stored.len());
    assert_eq!(lines, stored.iter().map(|e| serde_json::to_value(e).unwrap()).collect::<Vec<_>>());
    assert_eq!(ada.get("/admin/audit/export?since=1h").await.body, export.body, "everything is within the hour");
    let refused = ada.get("/admin/audit/export?since=later").await;
    assert!(refused.status == 400 && refused.body.contains("is not a time span"), "{}", refused.body);
}
