//! API key generation: random secrets, shown once, stored as hashes.

use base64::Engine;
use rand::Rng;
use signoff_domain::{ApiKey, ApproverId, Role, hash_key_secret};

/// A key to create.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    pub role: Role,
    /// The person the key acts for: required for approver keys, optional for admin keys (an unbound admin key
    /// manages but never decides), refused for agent keys.
    pub approver_id: Option<ApproverId>,
    /// For agent keys: the person responsible for the agent, who never approves its requests.
    pub owner_id: Option<ApproverId>,
}

impl NewKey {
    /// A key of `role` named `name`, bound to no one.
    pub fn new(name: impl Into<String>, role: Role) -> NewKey {
        NewKey { name: name.into(), role, approver_id: None, owner_id: None }
    }

    /// An approver key for `approver_id`.
    pub fn approver(approver_id: &ApproverId) -> NewKey {
        NewKey { approver_id: Some(approver_id.clone()), ..NewKey::new(approver_id.as_str(), Role::Approver) }
    }
}

/// A created key with the secrets that are shown once.
#[derive(Clone)]
pub struct CreatedKeySecret {
    pub key: ApiKey,
    pub secret: String,
    pub webhook_secret: Option<String>,
}

impl std::fmt::Debug for CreatedKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKeySecret").field("key", &self.key).field("secret", &"***").finish()
    }
}

/// The generated parts of a new key: id, bearer secret and its hash, and for agents a webhook secret.
pub(crate) struct GeneratedKey {
    pub id: String,
    pub secret: String,
    pub secret_hash: String,
    pub webhook_secret: Option<String>,
}

pub(crate) fn generate(role: Role) -> GeneratedKey {
    let mut rng = rand::rng();
    let id = format!("key_{}", random_token(&mut rng, 8));
    let secret = format!("so_{}_{}", role.as_str(), random_token(&mut rng, 32));
    let webhook_secret = matches!(role, Role::Agent | Role::Admin).then(|| {
        let bytes: [u8; 24] = rng.random();
        format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
    });
    GeneratedKey { id, secret_hash: hash_key_secret(&secret), secret, webhook_secret }
}

fn random_token(rng: &mut impl Rng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// Refuses keys that cannot work: approver keys must name their person, agent keys act for no one (they may name
/// an owner), and only agent keys have owners.
pub(crate) fn validate(key: &NewKey) -> Result<(), crate::StoreError> {
    let problem = match (key.role, &key.approver_id, &key.owner_id) {
        _ if key.name.trim().is_empty() => Some("a key needs a name"),
        (Role::Approver, None, _) => Some("an approver key needs --approver ID (the person recorded in decisions)"),
        (Role::Agent, Some(_), _) => {
            Some("an agent key acts for no person; name the person responsible for it with --owner ID")
        }
        (Role::Approver | Role::Admin, _, Some(_)) => Some("only agent keys have an owner (--owner)"),
        _ => None,
    };
    match problem {
        Some(message) => Err(crate::StoreError::Invalid(message.to_string())),
        None => Ok(()),
    }
}

pub(crate) fn created_event(key: &ApiKey, actor: &str) -> signoff_domain::NewEvent {
    key_event(signoff_domain::EventKind::KeyCreated, key, actor)
}

pub(crate) fn revoked_event(key: &ApiKey, actor: &str) -> signoff_domain::NewEvent {
    key_event(signoff_domain::EventKind::KeyRevoked, key, actor)
}

/// A key event: which key, its role, and the people it is bound to.
fn key_event(kind: signoff_domain::EventKind, key: &ApiKey, actor: &str) -> signoff_domain::NewEvent {
    let data = serde_json::json!({
        "key_id": key.id,
        "name": key.name,
        "role": key.role,
        "approver_id": key.approver_id,
        "owner_id": key.owner_id,
    });
    signoff_domain::NewEvent::new(None, kind, actor, data)
}
