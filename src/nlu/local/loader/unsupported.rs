//! Parts of the visual conversation builder the engine does not run, named
//! as load warnings.

/// Parts of the visual conversation builder the engine does not run, found
/// anywhere in an intent's or slot's settings and named once each:
/// conditional branches, code hooks on elicitation, fulfillment updates.
pub fn unsupported_steps(v: &serde_json::Value, owner: &str, warnings: &mut Vec<String>) {
    fn active(v: &serde_json::Value, flag: &str) -> bool {
        v.get(flag).and_then(serde_json::Value::as_bool) == Some(true)
    }
    fn walk(v: &serde_json::Value, owner: &str, warnings: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (key, child) in map {
                    let conditional = key == "conditional" || key.ends_with("Conditional");
                    if conditional && active(child, "active") {
                        warnings.push(format!(
                            "{owner}: conditional branching ({key}) is not supported"
                        ));
                    } else if key == "elicitationCodeHook"
                        && active(child, "enableCodeHookInvocation")
                    {
                        warnings.push(format!(
                            "{owner}: elicitation code hooks (Lambda) are not called"
                        ));
                    } else if key == "fulfillmentUpdatesSpecification" && active(child, "active") {
                        warnings.push(format!("{owner}: fulfillment updates are not sent"));
                    }
                    walk(child, owner, warnings);
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    walk(item, owner, warnings);
                }
            }
            _ => {}
        }
    }
    walk(v, owner, warnings);
}
