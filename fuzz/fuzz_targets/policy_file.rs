//! Policy files: any text gives an enforcer or an error, never a panic,
//! and an enforcer answers every registered rule.
#![no_main]

use libfuzzer_sys::fuzz_target;
use placement::policy::{Credentials, Defaults, Enforcer, Target, actions};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for defaults in [Defaults::Secure, Defaults::Legacy] {
        if let Ok(enforcer) = Enforcer::new(defaults, Some(&text)) {
            let credentials = Credentials {
                user_id: "u".to_owned(),
                project_id: Some("p".to_owned()),
                roles: vec!["member".to_owned(), "reader".to_owned()],
                is_admin_project: true,
                ..Credentials::default()
            };
            let target = Target::of(&credentials);
            for action in [
                actions::ADMIN_API,
                actions::RESOURCE_PROVIDERS_LIST,
                actions::TOTAL_USAGES,
            ] {
                let _ = enforcer.authorize(action, &credentials, &target);
            }
        }
    }
});
