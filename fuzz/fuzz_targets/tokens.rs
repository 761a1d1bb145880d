//! Any string presented as a token (Authorization bearer, Visitor-Token, Admission-Token, the `wr_visitor`
//! cookie): checking it never panics, and nothing that was not signed with the deployment's key passes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uuid::Uuid;
use waiting_room::tokens::RoomTokens;

const KEY: &[u8] = b"fuzzing-key-fuzzing-key-fuzzing-";

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let signer = signing::Signer::new(KEY);
    for audience in ["access", "visitor", "admission"] {
        assert!(
            signer.verify::<serde_json::Value>(token, audience).is_err(),
            "an unsigned token passed: {token:?}"
        );
    }
    let (event, visitor) = (Uuid::nil(), Uuid::nil());
    assert!(signer.verify_visitor(token, event).is_err());
    assert!(signer.verify_admission_at(token, event, visitor, 0).is_err());
    // Signed claims carrying the input survive the round trip.
    let claims = serde_json::json!({ "sub": token, "iss": signing::ISSUER, "aud": "access", "exp": 4_000_000_000_i64 });
    let back: serde_json::Value = signer.verify(&signer.sign(&claims), "access").expect("our own token");
    assert_eq!(back["sub"], token);
});
