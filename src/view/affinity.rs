//! Affinity of `POST /claims`, as pure functions over where consumers
//! are: `different_host` and `same_host` (Nova's DifferentHostFilter and
//! SameHostFilter) and server groups (ServerGroupAffinityFilter,
//! ServerGroupAntiAffinityFilter with `max_server_per_host`, and the soft
//! policies, which rank instead of filter). A host is a root provider.

use std::collections::{BTreeSet, HashMap, HashSet};

use uuid::Uuid;

use super::world::ProviderId;

/// A server group's policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Policy {
    /// Every member on one host.
    Affinity,
    /// At most `max_per_host` members on any host.
    AntiAffinity { max_per_host: u32 },
    /// Prefer hosts holding more members.
    SoftAffinity,
    /// Prefer hosts holding fewer members.
    SoftAntiAffinity,
}

impl Policy {
    pub fn is_hard(self) -> bool {
        matches!(self, Policy::Affinity | Policy::AntiAffinity { .. })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServerGroup {
    pub policy: Policy,
    pub members: Vec<Uuid>,
    /// Multiplier of a soft policy's weigher.
    pub weight_multiplier: f64,
}

/// What a claim asks of its hosts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rules {
    pub different_host: Vec<Uuid>,
    pub same_host: Vec<Uuid>,
    pub group: Option<ServerGroup>,
}

impl Rules {
    pub fn is_empty(&self) -> bool {
        self.different_host.is_empty() && self.same_host.is_empty() && self.group.is_none()
    }

    /// Every consumer whose hosts the rules depend on.
    pub fn named_consumers(&self) -> BTreeSet<Uuid> {
        let mut named: BTreeSet<Uuid> = self.different_host.iter().copied().collect();
        named.extend(&self.same_host);
        if let Some(group) = &self.group {
            named.extend(&group.members);
        }
        named
    }
}

/// The rules applied to where the named consumers are: which hosts a
/// claim may use, and how many group members each host holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Constraints {
    avoid: HashSet<ProviderId>,
    /// `None`: no `same_host` rule.
    require_one_of: Option<HashSet<ProviderId>>,
    members_on_host: HashMap<ProviderId, u32>,
    policy: Option<Policy>,
    soft_multiplier: f64,
}

impl Constraints {
    /// `hosts_of`: the hosts each named consumer has allocations on
    /// (a consumer with none is nowhere).
    pub fn new(rules: &Rules, hosts_of: &HashMap<Uuid, BTreeSet<ProviderId>>) -> Constraints {
        let hosts = |uuids: &[Uuid]| -> HashSet<ProviderId> {
            uuids
                .iter()
                .filter_map(|uuid| hosts_of.get(uuid))
                .flatten()
                .copied()
                .collect()
        };
        let mut constraints = Constraints {
            avoid: hosts(&rules.different_host),
            require_one_of: (!rules.same_host.is_empty()).then(|| hosts(&rules.same_host)),
            ..Constraints::default()
        };
        if let Some(group) = &rules.group {
            constraints.policy = Some(group.policy);
            constraints.soft_multiplier = match group.policy {
                Policy::SoftAffinity => group.weight_multiplier,
                Policy::SoftAntiAffinity => -group.weight_multiplier,
                _ => 0.0,
            };
            let members: BTreeSet<&Uuid> = group.members.iter().collect();
            for member in members {
                for host in hosts_of.get(member).into_iter().flatten() {
                    *constraints.members_on_host.entry(*host).or_insert(0) += 1;
                }
            }
        }
        constraints
    }

    /// True when a claim may be placed on `host`.
    pub fn allows(&self, host: ProviderId) -> bool {
        if self.avoid.contains(&host) {
            return false;
        }
        if let Some(allowed) = &self.require_one_of
            && !allowed.contains(&host)
        {
            return false;
        }
        match self.policy {
            Some(Policy::Affinity) => {
                self.members_on_host.is_empty() || self.members_on_host.contains_key(&host)
            }
            Some(Policy::AntiAffinity { max_per_host }) => self.members_on(host) < max_per_host,
            _ => true,
        }
    }

    /// Group members on `host`.
    pub fn members_on(&self, host: ProviderId) -> u32 {
        self.members_on_host.get(&host).copied().unwrap_or(0)
    }

    /// A consumer of the request placed on `host`: it is a member of the
    /// request's group from now on.
    pub fn record(&mut self, host: ProviderId) {
        if self.policy.is_some() {
            *self.members_on_host.entry(host).or_insert(0) += 1;
        }
    }

    /// The multiplier of the members-on-host weigher: positive for
    /// soft-affinity, negative for soft-anti-affinity, `None` without a
    /// soft policy.
    pub fn soft_weigher(&self) -> Option<f64> {
        match self.policy {
            Some(Policy::SoftAffinity | Policy::SoftAntiAffinity) => Some(self.soft_multiplier),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn placed(pairs: &[(u128, ProviderId)]) -> HashMap<Uuid, BTreeSet<ProviderId>> {
        let mut hosts: HashMap<Uuid, BTreeSet<ProviderId>> = HashMap::new();
        for (consumer, host) in pairs {
            hosts.entry(uuid(*consumer)).or_default().insert(*host);
        }
        hosts
    }

    fn group(policy: Policy, members: &[u128]) -> Rules {
        Rules {
            group: Some(ServerGroup {
                policy,
                members: members.iter().map(|n| uuid(*n)).collect(),
                weight_multiplier: 1.0,
            }),
            ..Rules::default()
        }
    }

    #[test]
    fn different_and_same_host() {
        let hosts = placed(&[(1, 10), (2, 20)]);
        let rules = Rules {
            different_host: vec![uuid(1)],
            ..Rules::default()
        };
        let constraints = Constraints::new(&rules, &hosts);
        assert!(!constraints.allows(10));
        assert!(constraints.allows(20) && constraints.allows(30));

        let rules = Rules {
            same_host: vec![uuid(2), uuid(9)],
            ..Rules::default()
        };
        let constraints = Constraints::new(&rules, &hosts);
        assert!(constraints.allows(20));
        assert!(!constraints.allows(10) && !constraints.allows(30));

        // Consumers that are nowhere leave no host to share.
        let rules = Rules {
            same_host: vec![uuid(9)],
            ..Rules::default()
        };
        assert!(!Constraints::new(&rules, &hosts).allows(10));
    }

    #[test]
    fn anti_affinity_counts_members_up_to_the_maximum() {
        let hosts = placed(&[(1, 10), (2, 10), (3, 20), (4, 30)]);
        let constraints = Constraints::new(
            &group(Policy::AntiAffinity { max_per_host: 2 }, &[1, 2, 3]),
            &hosts,
        );
        assert!(!constraints.allows(10));
        assert!(constraints.allows(20));
        // Consumer 4 is not a member: host 30 holds none.
        assert_eq!(constraints.members_on(30), 0);
        let mut constraints = constraints;
        constraints.record(20);
        assert!(!constraints.allows(20));
    }

    #[test]
    fn affinity_follows_the_first_member() {
        let mut constraints = Constraints::new(&group(Policy::Affinity, &[1, 2]), &placed(&[]));
        assert!(constraints.allows(10) && constraints.allows(20));
        constraints.record(20);
        assert!(constraints.allows(20));
        assert!(!constraints.allows(10));
    }

    #[test]
    fn soft_policies_rank_and_never_filter() {
        let hosts = placed(&[(1, 10)]);
        let soft = Constraints::new(&group(Policy::SoftAntiAffinity, &[1]), &hosts);
        assert!(soft.allows(10));
        assert_eq!(soft.soft_weigher(), Some(-1.0));
        let soft = Constraints::new(&group(Policy::SoftAffinity, &[1]), &hosts);
        assert_eq!(soft.soft_weigher(), Some(1.0));
        let hard = Constraints::new(&group(Policy::Affinity, &[1]), &hosts);
        assert_eq!(hard.soft_weigher(), None);
    }
}
