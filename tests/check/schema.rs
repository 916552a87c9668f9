//! `schemas/check.schema.json`: a valid draft 2020-12 schema that closes every object, which real
//! `check --json` output matches (each address's report through `$ref` to
//! `schemas/report.schema.json`), and which refuses renamed fields and unknown values.

use serde_json::{Value, json};

use super::support::check::{
    CHECK_SCHEMA, check, check_schema_violations, check_validator, loopback,
};
use super::support::{FakeSmtp, Fixture, Run};
use super::{DEAD, DOMAIN, MX1, MX2, TLS_RPT, TLS_RPT_NAME, tlsa_name, zone};

#[test]
fn the_check_schema_is_valid_draft_2020_12_and_closes_every_object() {
    let schema: Value = serde_json::from_str(CHECK_SCHEMA).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("not a valid JSON Schema: {e} at {}", e.instance_path());
    }
    check_validator();
    let mut objects = vec![("(root)".to_owned(), &schema)];
    for (name, def) in schema["$defs"].as_object().unwrap() {
        if def["type"] == "object" {
            objects.push((name.clone(), def));
        }
    }
    assert!(objects.len() > 15, "every object of the report has a $def");
    for (name, object) in objects {
        assert_eq!(object["additionalProperties"], false, "{name}");
        let mut properties: Vec<&String> =
            object["properties"].as_object().unwrap().keys().collect();
        let mut required: Vec<&str> = object["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        properties.sort();
        required.sort_unstable();
        assert_eq!(
            properties, required,
            "{name}: every field is always present"
        );
    }
}

/// A run with a bit of everything: two MX, one failing, DANE records, a TLS-RPT record.
fn varied_run() -> (Run, Value) {
    let fx = Fixture::new();
    let good = fx.pki.leaf_for(&[MX1]);
    let servers = FakeSmtp::start_on_one_port(vec![
        (loopback(2), FakeSmtp::builder().leaf(&good)),
        (
            loopback(3),
            FakeSmtp::builder().leaf(&fx.pki.expired_leaf_for(&[MX2])),
        ),
    ]);
    let port = servers[0].port();
    let dns = zone(&[(MX1, &["127.0.0.2"]), (MX2, &["127.0.0.3", DEAD])])
        .tlsa(&tlsa_name(port, MX1), 3, 1, 1, &good.spki_sha256())
        .tlsa(&tlsa_name(port, MX1), 1, 1, 1, &[0; 32])
        .txt(TLS_RPT_NAME, TLS_RPT)
        .authentic(true)
        .start();
    let ca = fx.ca_file();
    let run = check(&dns, port, &[DOMAIN], &["--ca-file", &ca, "--json"]);
    let doc = run.json();
    (run, doc)
}

#[test]
fn json_output_matches_the_schema_strictly() {
    let (run, doc) = varied_run();
    let errors = check_schema_violations(&doc);
    assert!(errors.is_empty(), "{}\n{run}", errors.join("\n"));
}

#[test]
fn the_schema_catches_renames_removals_and_unknown_values() {
    let (run, doc) = varied_run();
    run.assert_code(3);
    let only_known = |doc: &Value| check_schema_violations(doc);
    assert_eq!(only_known(&doc), Vec::<String>::new(), "{run}");
    let address = "/domains/0/hosts/0/addresses/0";
    let report = format!("{address}/report");
    let cases: [(&str, &str, Option<Value>); 8] = [
        ("/domains/0/verdict", "status", Some(json!("great"))),
        ("/domains/0/verdict/reasons/0", "code", Some(json!("bogus"))),
        ("/domains/0", "implicit_mx", None),
        ("/domains/0/hosts/0", "mta_sts", Some(json!(null))),
        (address, "exit_code", Some(json!(9))),
        (address, "dane_verified", Some(json!("yes"))),
        (&report, "tls", None),
        ("/domains/0/mx", "kind", Some(json!("cname"))),
    ];
    for (path, field, change) in cases {
        let mut broken = doc.clone();
        let object = broken.pointer_mut(path).unwrap().as_object_mut().unwrap();
        assert!(
            change.is_some() || object.contains_key(field),
            "{path}/{field} exists"
        );
        match change {
            Some(value) => object.insert(field.to_owned(), value),
            None => object.remove(field),
        };
        assert!(
            !only_known(&broken).is_empty(),
            "{path}/{field}: the schema should refuse the change"
        );
    }
}
