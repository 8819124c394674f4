//! Each capability's state, built once from the services and registered as
//! app data: handlers see only their own capability's state.

use super::*;

/// Each capability's state, as app data (built once, shared by every worker).
pub(super) struct Registry {
    pub(super) items: Vec<RegistryItem>,
}

/// Registers one capability's state as app data.
pub(super) type RegistryItem = Box<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

impl Registry {
    fn add<T: 'static + Send + Sync>(&mut self, value: T) {
        let data = web::Data::new(value);
        self.items.push(Box::new(move |cfg| {
            cfg.app_data(data.clone());
        }));
    }
}

pub(super) fn register(s: &Services) -> Registry {
    let mut r = Registry { items: Vec::new() };
    let policy = s.settings.policy.clone();
    // What auth and the capabilities it serves know of single sign-on.
    let external: crate::auth::external::ExternalHook = s
        .sso
        .clone()
        .map(|c| c as Arc<dyn crate::auth::external::ExternalSignIn>);
    r.add(s.db.clone());
    r.add(s.audit.clone());
    r.add(s.clock.clone());
    r.add(s.readiness.clone());
    r.add(s.settings.trusted_proxies.clone());
    r.add(crate::health::MetricsAccess(
        s.settings.metrics_token.clone(),
    ));
    r.add(s.throttle.clone());
    r.add(Gatekeeper {
        users: s.users.clone(),
        audit: s.audit.clone(),
        clock: s.clock.clone(),
        absolute_timeout: s.settings.absolute_timeout,
        external: external.clone(),
        // Under dual control, supervisors see the requests waiting for them.
        counts: (s.settings.policy.approval == crate::decrypt::policy::ApprovalMode::Required)
            .then(|| Arc::new(s.approvals.clone()) as Arc<dyn crate::auth::principal::NavCounts>),
        cookie_secure: s.settings.cookie_secure,
    });
    r.add(crate::account::AccountState {
        audit: s.audit.clone(),
        users: s.users.clone(),
        throttle: s.throttle.clone(),
        totp: s.totp.clone(),
        clock: s.clock.clone(),
        step_up_window: policy.step_up_window,
        external: external.clone(),
    });
    r.add(crate::sso::SsoState {
        console: s.sso.clone(),
        audit: s.audit.clone(),
        clock: s.clock.clone(),
        step_up_window: policy.step_up_window,
    });
    r.add(crate::admin::AdminState {
        audit: s.audit.clone(),
        users: s.users.clone(),
        totp: s.totp.clone(),
        external: external.clone(),
    });
    r.add(crate::contacts::ContactsState {
        audit: s.audit.clone(),
        clock: s.clock.clone(),
        directory: Arc::clone(&s.directory),
        sensitive: s.sensitive.clone(),
        can_decrypt: s.decryptor.is_some() || s.keypad.is_some(),
        approval_required: policy.approval == ApprovalMode::Required,
        paging: Arc::clone(&s.paging),
        searchable: s.settings.aws.searchable_attributes.clone(),
        connect_access_url: s.settings.aws.connect_access_url.clone(),
        users: s.users.clone(),
    });
    r.add(crate::logs::LogsState {
        audit: s.audit.clone(),
        logs: Arc::clone(&s.logs),
        sensitive: s.sensitive.clone(),
        directory: Arc::clone(&s.directory),
        clock: s.clock.clone(),
        paging: Arc::clone(&s.paging),
        flow_log_pages: s.settings.aws.flow_log_pages,
        users: s.users.clone(),
    });
    r.add(crate::review::ReviewState {
        audit: s.audit.clone(),
        clock: s.clock.clone(),
        users: s.users.clone(),
        shipper: s.shipper.clone(),
        budget: policy.budget,
    });
    r.add(crate::decrypt::RevealState {
        users: s.users.clone(),
        reveals: crate::decrypt::Reveals {
            audit: s.audit.clone(),
            totp: s.totp.clone(),
            clock: s.clock.clone(),
            budget: s.budget.clone(),
            approvals: s.approvals.clone(),
            directory: Some(Arc::clone(&s.directory)),
            decryptor: s.decryptor.clone(),
            keypad: s.keypad.clone(),
            grants: crate::decrypt::grants::Grants::new(s.db.clone(), s.clock.clone()),
            legacy: s.settings.legacy_context.clone(),
            policy,
            retention: s.settings.retention,
            external_sign_in: external.is_some(),
        },
        form_page: Some(crate::contacts::form_page),
    });
    r
}
