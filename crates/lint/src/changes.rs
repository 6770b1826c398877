//! Changes Swarm refuses to make to a running service, decided on the service as it runs and
//! as it is to be (both read typed), so every way of editing one — the dashboard's form, "edit
//! as compose" — refuses them the same way before anything is sent.

use swarmkeeper_swarm::ServiceMode;

/// Swarm cannot turn a service's mode into another (replicated, global, and their jobs; the
/// engine answers 501 "service mode change is not allowed"): why, or `None` when the mode
/// stays. A new replica count is not a change of mode.
pub fn mode_change(current: &ServiceMode, wanted: &ServiceMode) -> Option<String> {
    (current.as_str() != wanted.as_str()).then(|| {
        format!(
            "Swarm cannot change a service's mode: this one stays {}; create a new service \
             instead",
            current.as_str()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_keeps_its_mode_and_may_scale() {
        let replicated = |replicas| ServiceMode::Replicated { replicas };
        assert_eq!(mode_change(&replicated(1), &replicated(5)), None);
        assert_eq!(
            mode_change(&ServiceMode::Global, &ServiceMode::Global),
            None
        );
        let refused = mode_change(&replicated(2), &ServiceMode::Global).unwrap();
        assert!(refused.contains("stays replicated"), "{refused}");
        let refused = mode_change(&ServiceMode::Global, &replicated(1)).unwrap();
        assert!(refused.contains("stays global"), "{refused}");
        assert!(mode_change(&ServiceMode::GlobalJob, &ServiceMode::Global).is_some());
    }
}
