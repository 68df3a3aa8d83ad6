//! Property tests of what Discord sends in: arbitrary bytes and interaction-shaped JSON never panic the parser or
//! the reading of modal inputs; arbitrary headers never panic the signature check, and only the key's own signature
//! of the timestamp and body passes; arbitrary `custom_id`s never panic their parsers, and every id Signoff makes
//! reads back as itself within Discord's 100 characters.
//!
//! Set `PROPTEST_CASES` (e.g. `PROPTEST_CASES=100000`) to run more cases than the default.

use ed25519_dalek::{Signer, SigningKey};
use proptest::prelude::*;
use serde_json::{Value, json};
use signoff_domain::RequestId;
use signoff_notify::discord::{Button, CUSTOM_ID_MAX, Modal, PublicKey, parse_interaction, verify_signature};

/// `default` cases, or `PROPTEST_CASES` when it is set.
fn config(default: u32) -> ProptestConfig {
    let config = match std::env::var_os("PROPTEST_CASES") {
        Some(_) => ProptestConfig::default(),
        None => ProptestConfig::with_cases(default),
    };
    ProptestConfig { failure_persistence: None, ..config }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        Just(json!(4)),
        Just(json!("reason")),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        let key = prop::sample::select(vec!["type", "custom_id", "value", "components", "component", "id", "x"]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// An interaction with arbitrary `member`, `user`, `data` and `message`.
fn interaction() -> impl Strategy<Value = Value> {
    (0u8..8, json_value(), json_value(), json_value(), json_value()).prop_map(|(kind, member, user, data, message)| {
        json!({"type": kind, "id": "1", "member": member, "user": user, "data": data, "message": message})
    })
}

fn custom_id() -> impl Strategy<Value = String> {
    let kind = prop::sample::select(vec!["approve", "reject", "answer", "option", "reject_modal", "answer_modal", ""]);
    prop_oneof![
        "\\PC{0,120}",
        (kind.clone(), "[0-9a-f:-]{0,50}").prop_map(|(kind, rest)| format!("{kind}:{rest}")),
        (kind, any::<u128>(), any::<u64>())
            .prop_map(|(kind, id, index)| { format!("{kind}:{}:{index}", uuid::Uuid::from_u128(id)) }),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(body in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_interaction(&body);
    }

    #[test]
    fn interaction_shaped_json_never_panics(payload in interaction()) {
        if let Ok(interaction) = parse_interaction(payload.to_string().as_bytes()) {
            let _ = (interaction.kind(), interaction.user_id(), interaction.in_guild(), interaction.custom_id());
            let _ = interaction.modal_values();
        }
    }

    #[test]
    fn only_the_keys_signature_of_the_timestamp_and_body_passes(
        timestamp in "[0-9]{0,12}|\\PC{0,12}",
        body in prop::collection::vec(any::<u8>(), 0..100),
        signature in "[0-9a-f]{0,130}|\\PC{0,20}",
        now in any::<i64>(),
    ) {
        let signing = SigningKey::from_bytes(&[9; 32]);
        let key = PublicKey::from_key(signing.verifying_key());
        let good = hex::encode(signing.sign(&[timestamp.as_bytes(), &body].concat()).to_bytes());
        if verify_signature(&key, &timestamp, &body, &signature, now).is_ok() {
            prop_assert_eq!(&signature, &good);
        }
        if let Ok(sent) = timestamp.parse::<i64>() {
            prop_assert_eq!(verify_signature(&key, &timestamp, &body, &good, sent), Ok(()));
        }
    }

    #[test]
    fn custom_ids_never_panic_and_signoffs_own_read_back(
        text in custom_id(),
        id in any::<u128>(),
        index in 0usize..1000,
    ) {
        let _ = (Button::parse(&text), Modal::parse(&text));
        let id = RequestId::from(uuid::Uuid::from_u128(id));
        for button in [Button::Approve(id), Button::Reject(id), Button::Answer(id), Button::AnswerOption(id, index)] {
            prop_assert!(button.custom_id().len() <= CUSTOM_ID_MAX);
            prop_assert_eq!(Button::parse(&button.custom_id()), Some(button));
            prop_assert_eq!(Modal::parse(&button.custom_id()), None);
        }
        for modal in [Modal::Reject(id), Modal::Answer(id)] {
            prop_assert_eq!(Modal::parse(&modal.custom_id()), Some(modal));
            prop_assert_eq!(Button::parse(&modal.custom_id()), None);
        }
    }
}
