//! Checks on the `verification` object of a `--json` report: the three verdict flags and the
//! reasons (code, severity, certificate index, message in words).

use serde_json::Value;

use super::cli::Run;

/// Assert the three verdict flags.
#[track_caller]
pub fn assert_verdict(
    run: &Run,
    doc: &Value,
    verified: bool,
    chain_trusted: bool,
    name_matches: bool,
) {
    let v = &doc["verification"];
    assert_eq!(
        (&v["verified"], &v["chain_trusted"], &v["name_matches"]),
        (
            &Value::from(verified),
            &Value::from(chain_trusted),
            &Value::from(name_matches)
        ),
        "(verified, chain_trusted, name_matches)\n{run}"
    );
}

/// The reason codes, in order.
pub fn reason_codes(doc: &Value) -> Vec<&str> {
    doc["verification"]["reasons"]
        .as_array()
        .map(|reasons| reasons.iter().filter_map(|r| r["code"].as_str()).collect())
        .unwrap_or_default()
}

/// Assert a reason with this code is there with this severity and certificate index (`None`:
/// the chain as a whole); returns its message, which must be words, not a code.
#[track_caller]
pub fn assert_reason(
    run: &Run,
    doc: &Value,
    code: &str,
    severity: &str,
    certificate: Option<u64>,
) -> String {
    let reasons = doc["verification"]["reasons"]
        .as_array()
        .unwrap_or_else(|| panic!("no verification.reasons\n{run}"));
    let reason = reasons
        .iter()
        .find(|r| r["code"] == code)
        .unwrap_or_else(|| panic!("no {code:?} reason among {:?}\n{run}", reason_codes(doc)));
    assert_eq!(reason["severity"], severity, "{code}\n{run}");
    assert_eq!(
        reason["certificate"],
        certificate.map_or(Value::Null, Value::from),
        "{code}: certificate index\n{run}"
    );
    let message = reason["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.split_whitespace().count() >= 4,
        "{code}: a message in words\n{run}"
    );
    message
}
