use std::fmt;
use std::str::FromStr;

/// What a user may do. Each role includes everything the roles below it may do, so the order
/// of the variants is the order of privilege.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected viewer, operator or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Everything the server offers that needs a role. A handler names its action and asks
/// [`allowed`]; a new endpoint gets a new variant rather than borrowing a neighbour's, so the
/// table below stays the one place that says who may do what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Nodes, disks, services, tasks, stacks.
    ViewCluster,
    /// Stack deploy history and the revisions a rollback could return to.
    ViewDeployHistory,
    /// Service and task logs.
    ViewLogs,
    Deploy,
    Scale,
    Redeploy,
    Rollback,
    /// Create, rotate and remove secrets and configs.
    ManageSecrets,
    /// A node's availability, labels and role; removing a node that is down.
    ManageNodes,
    /// Create and remove networks.
    ManageNetworks,
    /// Remove a service or a whole stack (`docker service rm`, `docker stack rm`).
    Remove,
    ChangeOwnPassword,
    /// Create, list and revoke one's own personal API tokens.
    ManageOwnTokens,
    /// Create, disable and change the role of users; revoke anyone's tokens and sessions.
    ManageUsers,
    ManageSettings,
    ViewAudit,
    /// Add, test and remove private registries (their credentials); the registry hook token.
    ManageRegistries,
    /// Turn a service's auto-deploy on or off, check its tag now, make its hook token, forget
    /// a digest remembered as failed.
    ManageAutoDeploy,
    /// Remove a volume from the node it lives on: its data goes for good, so admins only,
    /// and never on GC's initiative.
    RemoveVolumes,
}

impl Action {
    pub const ALL: [Action; 19] = [
        Action::ViewCluster,
        Action::ViewDeployHistory,
        Action::ViewLogs,
        Action::Deploy,
        Action::Scale,
        Action::Redeploy,
        Action::Rollback,
        Action::ManageSecrets,
        Action::ManageNodes,
        Action::ManageNetworks,
        Action::Remove,
        Action::ChangeOwnPassword,
        Action::ManageOwnTokens,
        Action::ManageUsers,
        Action::ManageSettings,
        Action::ViewAudit,
        Action::ManageRegistries,
        Action::ManageAutoDeploy,
        Action::RemoveVolumes,
    ];

    /// The name written to the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ViewCluster => "view-cluster",
            Action::ViewDeployHistory => "view-deploy-history",
            Action::ViewLogs => "view-logs",
            Action::Deploy => "deploy",
            Action::Scale => "scale",
            Action::Redeploy => "redeploy",
            Action::Rollback => "rollback",
            Action::ManageSecrets => "manage-secrets",
            Action::ManageNodes => "manage-nodes",
            Action::ManageNetworks => "manage-networks",
            Action::Remove => "remove",
            Action::ChangeOwnPassword => "change-own-password",
            Action::ManageOwnTokens => "manage-own-tokens",
            Action::ManageUsers => "manage-users",
            Action::ManageSettings => "manage-settings",
            Action::ViewAudit => "view-audit",
            Action::ManageRegistries => "manage-registries",
            Action::ManageAutoDeploy => "manage-autodeploy",
            Action::RemoveVolumes => "remove-volumes",
        }
    }

    /// What the action does, in words for a refusal ("your role may not manage secrets and
    /// configs"); [`Action::as_str`] is the audit log's id (tryout 11 finding 11: refusals
    /// named the id).
    pub fn described(self) -> &'static str {
        match self {
            Action::ViewCluster => "see the cluster",
            Action::ViewDeployHistory => "see the deploy history",
            Action::ViewLogs => "read service and task logs",
            Action::Deploy => "deploy or edit services and stacks",
            Action::Scale => "scale services",
            Action::Redeploy => "redeploy services",
            Action::Rollback => "roll services and stacks back",
            Action::ManageSecrets => "create, rotate or remove secrets and configs",
            Action::ManageNodes => "change nodes (availability, labels, role, removal)",
            Action::ManageNetworks => "create or remove networks",
            Action::Remove => "remove services or stacks",
            Action::ChangeOwnPassword => "change their password",
            Action::ManageOwnTokens => "manage their API tokens",
            Action::ManageUsers => "manage users",
            Action::ManageSettings => "change the server's settings",
            Action::ViewAudit => "read the audit log",
            Action::ManageRegistries => "manage registries and their credentials",
            Action::ManageAutoDeploy => "change auto-deploy",
            Action::RemoveVolumes => "remove volumes",
        }
    }

    /// Whether taking the action changes the cluster — Swarm's services, stacks, nodes,
    /// secrets, configs, networks or volumes — rather than reading it or changing only what
    /// swarmkeeper keeps (users, tokens, settings, registries, auto-deploy switches). The
    /// overview's events are the audit entries of these actions ([`Action::of_audit`]).
    pub fn changes_cluster(self) -> bool {
        match self {
            Action::Deploy
            | Action::Scale
            | Action::Redeploy
            | Action::Rollback
            | Action::ManageSecrets
            | Action::ManageNodes
            | Action::ManageNetworks
            | Action::Remove
            | Action::RemoveVolumes => true,
            Action::ViewCluster
            | Action::ViewDeployHistory
            | Action::ViewLogs
            | Action::ChangeOwnPassword
            | Action::ManageOwnTokens
            | Action::ManageUsers
            | Action::ManageSettings
            | Action::ViewAudit
            | Action::ManageRegistries
            | Action::ManageAutoDeploy => false,
        }
    }

    /// The kind of change an audit entry named `name` records: the action of that name, or
    /// the action an [`AuditStep`] of that name belongs to; `None` for the entries of no
    /// action (`login`, `create-user`, `forget-node`, …).
    pub fn of_audit(name: &str) -> Option<Action> {
        Action::ALL
            .into_iter()
            .find(|action| action.as_str() == name)
            .or_else(|| {
                AuditStep::ALL
                    .into_iter()
                    .find(|step| step.as_str() == name)
                    .map(AuditStep::action)
            })
    }

    /// Who may take the action, for a refusal: "an operator or an admin may".
    pub fn who_may(self) -> &'static str {
        match self.minimum_role() {
            Role::Viewer => "every role may",
            Role::Operator => "an operator or an admin may",
            Role::Admin => "only an admin may",
        }
    }

    /// The least role that may take this action: the whole permission table.
    pub fn minimum_role(self) -> Role {
        match self {
            Action::ViewCluster | Action::ViewDeployHistory => Role::Viewer,
            // Personal tokens carry their owner's role, so a viewer's token for a read-only CI
            // job grants nothing a viewer's password does not.
            Action::ChangeOwnPassword | Action::ManageOwnTokens => Role::Viewer,
            // Logs are operator-only: applications print connection strings and tokens there.
            Action::ViewLogs => Role::Operator,
            Action::Deploy
            | Action::Scale
            | Action::Redeploy
            | Action::Rollback
            | Action::ManageSecrets
            | Action::ManageNodes
            | Action::ManageNetworks
            | Action::Remove => Role::Operator,
            // Auto-deploy only ever rolls out the tag the service already names.
            Action::ManageAutoDeploy => Role::Operator,
            // Registry credentials let every node pull every private image.
            Action::ManageRegistries => Role::Admin,
            // A volume's data cannot be brought back.
            Action::RemoveVolumes => Role::Admin,
            // The audit log names every user and what they touched: admin business.
            Action::ManageUsers | Action::ManageSettings | Action::ViewAudit => Role::Admin,
        }
    }
}

/// A step an audit entry names rather than the action it belongs to: a service created or
/// edited in the form or as JSON, a service or stack edited as compose, a secret or config
/// created, rotated or removed, a secret re-keyed (an admin's, allowed by
/// [`Action::ManageSettings`], but a secret change all the same), and the deploys auto-deploy
/// starts on its own (its entries name it as both who and action). The server writes these
/// names only through this type, so that [`Action::of_audit`] knows every one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditStep {
    CreateService,
    EditService,
    EditServiceAsCompose,
    EditStackAsCompose,
    AutoDeploy,
    CreateSecret,
    RotateSecret,
    RemoveSecret,
    RekeySecret,
    CreateConfig,
    RotateConfig,
    RemoveConfig,
}

impl AuditStep {
    pub const ALL: [AuditStep; 12] = [
        AuditStep::CreateService,
        AuditStep::EditService,
        AuditStep::EditServiceAsCompose,
        AuditStep::EditStackAsCompose,
        AuditStep::AutoDeploy,
        AuditStep::CreateSecret,
        AuditStep::RotateSecret,
        AuditStep::RemoveSecret,
        AuditStep::RekeySecret,
        AuditStep::CreateConfig,
        AuditStep::RotateConfig,
        AuditStep::RemoveConfig,
    ];

    /// The name the audit log keeps (`create-service`, `rotate-secret`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditStep::CreateService => "create-service",
            AuditStep::EditService => "edit-service",
            AuditStep::EditServiceAsCompose => "edit-service-as-compose",
            AuditStep::EditStackAsCompose => "edit-stack-as-compose",
            AuditStep::AutoDeploy => "auto-deploy",
            AuditStep::CreateSecret => "create-secret",
            AuditStep::RotateSecret => "rotate-secret",
            AuditStep::RemoveSecret => "remove-secret",
            AuditStep::RekeySecret => "rekey-secret",
            AuditStep::CreateConfig => "create-config",
            AuditStep::RotateConfig => "rotate-config",
            AuditStep::RemoveConfig => "remove-config",
        }
    }

    /// The kind of change the step is.
    pub const fn action(self) -> Action {
        match self {
            AuditStep::CreateService
            | AuditStep::EditService
            | AuditStep::EditServiceAsCompose
            | AuditStep::EditStackAsCompose
            | AuditStep::AutoDeploy => Action::Deploy,
            AuditStep::CreateSecret
            | AuditStep::RotateSecret
            | AuditStep::RemoveSecret
            | AuditStep::RekeySecret
            | AuditStep::CreateConfig
            | AuditStep::RotateConfig
            | AuditStep::RemoveConfig => Action::ManageSecrets,
        }
    }
}

impl fmt::Display for AuditStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `role` may take `action`.
pub fn allowed(role: Role, action: Action) -> bool {
    role >= action.minimum_role()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_and_action_matches_the_expected_matrix() {
        // Columns: viewer, operator, admin. Written out in full rather than derived, so a
        // change to `minimum_role` has to be made twice, on purpose.
        let expected: [(Action, [bool; 3]); 19] = [
            (Action::ViewCluster, [true, true, true]),
            (Action::ViewDeployHistory, [true, true, true]),
            (Action::ViewLogs, [false, true, true]),
            (Action::Deploy, [false, true, true]),
            (Action::Scale, [false, true, true]),
            (Action::Redeploy, [false, true, true]),
            (Action::Rollback, [false, true, true]),
            (Action::ManageSecrets, [false, true, true]),
            (Action::ManageNodes, [false, true, true]),
            (Action::ManageNetworks, [false, true, true]),
            (Action::Remove, [false, true, true]),
            (Action::ChangeOwnPassword, [true, true, true]),
            (Action::ManageOwnTokens, [true, true, true]),
            (Action::ManageUsers, [false, false, true]),
            (Action::ManageSettings, [false, false, true]),
            (Action::ViewAudit, [false, false, true]),
            (Action::ManageRegistries, [false, false, true]),
            (Action::ManageAutoDeploy, [false, true, true]),
            (Action::RemoveVolumes, [false, false, true]),
        ];
        let listed: Vec<Action> = expected.iter().map(|(action, _)| *action).collect();
        assert_eq!(
            listed,
            Action::ALL,
            "the matrix must list every action once"
        );
        for (action, row) in expected {
            for (role, want) in Role::ALL.into_iter().zip(row) {
                assert_eq!(allowed(role, action), want, "{role} / {action}");
            }
        }
    }

    #[test]
    fn roles_are_ordered_by_privilege() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
    }

    #[test]
    fn role_names_round_trip_and_unknown_names_are_refused() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        let err = "Admin".parse::<Role>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown role \"Admin\": expected viewer, operator or admin"
        );
    }

    #[test]
    fn audit_names_say_their_kind_of_change() {
        let kinds: Vec<Option<(Action, bool)>> = [
            "scale",
            "edit-service",
            "rekey-secret",
            "manage-nodes",
            "remove-volumes",
            "manage-settings",
            "login",
            "forget-node",
        ]
        .into_iter()
        .map(|name| Action::of_audit(name).map(|a| (a, a.changes_cluster())))
        .collect();
        assert_eq!(
            kinds,
            [
                Some((Action::Scale, true)),
                Some((Action::Deploy, true)),
                Some((Action::ManageSecrets, true)),
                Some((Action::ManageNodes, true)),
                Some((Action::RemoveVolumes, true)),
                Some((Action::ManageSettings, false)),
                None,
                None,
            ]
        );
        // A step is named once, never like an action, and is a change to the cluster.
        let mut names: Vec<&str> = AuditStep::ALL.iter().map(|s| s.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), AuditStep::ALL.len());
        for step in AuditStep::ALL {
            assert_eq!(
                Action::of_audit(step.as_str()),
                Some(step.action()),
                "{step}"
            );
            assert!(step.action().changes_cluster(), "{step}");
            assert!(
                Action::ALL.iter().all(|a| a.as_str() != step.as_str()),
                "{step}"
            );
        }
    }

    #[test]
    fn action_names_are_distinct() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
    }
}
