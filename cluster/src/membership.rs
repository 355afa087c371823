//! Cluster membership as data: who votes, who only learns, where new members listen, the
//! change an administrator asks for, and why a change is refused. The Raft engine owns the
//! protocol (`engine/raft.rs`, single-server changes after Ongaro's thesis, §4); the admin
//! HTTP API (`http/admin.rs`) and the real node's transport (`node.rs`, which dials members
//! added at run time) only read these types.
//!
//! A configuration is carried whole by every change entry (not as a delta), so a node knows
//! its configuration from the last change entry in its log, or from its snapshot, or — for
//! a cluster that never changed — from its flags (`--peers`, or nobody under `--join`).
//!
//! Addresses: members of the first configuration are dialed at the addresses each node got
//! in `--peers`; a member added later carries its peer address in the change entry, plus
//! optional per-dialer overrides (`peer_addr_via`), because a harness that runs every
//! directed link through its own proxy gives each dialer a different address for the
//! same node. An address in a node's own `--peers` always wins.

use crate::msg::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Where a member added by a change listens.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemberAddr {
    /// Its `--peer-listen` address (what other nodes dial, unless `peer_addr_via` says).
    pub peer_addr: String,
    /// Its HTTP client address, for clients and `GET /admin/members` (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    /// Per-dialer addresses: node `k` dials this member at `peer_addr_via[k]` (link proxies).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub peer_addr_via: BTreeMap<NodeId, String>,
}

impl MemberAddr {
    /// The address node `dialer` should dial.
    pub fn for_dialer(&self, dialer: &str) -> &str {
        self.peer_addr_via
            .get(dialer)
            .map_or(self.peer_addr.as_str(), String::as_str)
    }
}

/// A member to add, as the admin API receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMember {
    /// Node id (as its `--id`).
    pub id: NodeId,
    /// Where it listens.
    #[serde(flatten)]
    pub addr: MemberAddr,
}

/// One configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Membership {
    /// Log index of the change entry that made this configuration; 0 for the configuration
    /// from flags. Configurations are ordered by it.
    pub index: u64,
    /// Members whose votes count (elections, commitment, read quorums).
    pub voters: BTreeSet<NodeId>,
    /// Members that receive the log but neither vote nor count toward any quorum.
    pub learners: BTreeSet<NodeId>,
    /// Addresses of members added by a change (members from flags have none here).
    #[serde(default)]
    pub addrs: BTreeMap<NodeId, MemberAddr>,
}

impl Membership {
    /// The configuration from flags: every listed node a voter.
    pub fn bootstrap<'a>(voters: impl IntoIterator<Item = &'a NodeId>) -> Self {
        Membership {
            index: 0,
            voters: voters.into_iter().cloned().collect(),
            learners: BTreeSet::new(),
            addrs: BTreeMap::new(),
        }
    }

    /// True for voters and learners.
    pub fn contains(&self, id: &str) -> bool {
        self.voters.contains(id) || self.learners.contains(id)
    }

    /// Voters and learners, sorted.
    pub fn members(&self) -> BTreeSet<NodeId> {
        self.voters.union(&self.learners).cloned().collect()
    }

    /// Votes needed for a majority of the voters (1 for an empty set, which no one reaches
    /// because nobody votes).
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// The configuration `change` leads to, or why it is refused (content checks only; the
    /// engine checks timing: leadership, changes in flight, learner progress). Voter changes
    /// of more than one server are refused unless `allow_multi` (the unsafe variant).
    pub fn apply(&self, change: &ConfChange, allow_multi: bool) -> Result<Membership, ChangeError> {
        let mut next = self.clone();
        match change {
            ConfChange::AddLearner(m) => {
                if self.contains(&m.id) {
                    return Err(ChangeError::AlreadyMember(m.id.clone()));
                }
                check_addr(m)?;
                next.learners.insert(m.id.clone());
                next.addrs.insert(m.id.clone(), m.addr.clone());
            }
            ConfChange::Promote(id) => {
                if !self.learners.contains(id) {
                    return Err(if self.voters.contains(id) {
                        ChangeError::AlreadyVoter(id.clone())
                    } else {
                        ChangeError::NotMember(id.clone())
                    });
                }
                next.learners.remove(id);
                next.voters.insert(id.clone());
            }
            ConfChange::AddVoters(ms) => {
                if ms.is_empty() {
                    return Err(ChangeError::Empty);
                }
                if !allow_multi {
                    return Err(ChangeError::MultiServer(ms.len()));
                }
                for m in ms {
                    if self.contains(&m.id) {
                        return Err(ChangeError::AlreadyMember(m.id.clone()));
                    }
                    check_addr(m)?;
                    next.voters.insert(m.id.clone());
                    next.addrs.insert(m.id.clone(), m.addr.clone());
                }
            }
            ConfChange::Remove(ids) => {
                if ids.is_empty() {
                    return Err(ChangeError::Empty);
                }
                let voters = ids.iter().filter(|i| self.voters.contains(*i)).count();
                if voters > 1 && !allow_multi {
                    return Err(ChangeError::MultiServer(voters));
                }
                for id in ids {
                    if !self.contains(id) {
                        return Err(ChangeError::NotMember(id.clone()));
                    }
                    next.voters.remove(id);
                    next.learners.remove(id);
                    next.addrs.remove(id);
                }
                if next.voters.is_empty() {
                    return Err(ChangeError::LastVoter);
                }
            }
        }
        Ok(next)
    }
}

fn check_addr(m: &NewMember) -> Result<(), ChangeError> {
    if m.id.is_empty() || m.id.contains([',', '=', '/']) || m.id.trim() != m.id {
        return Err(ChangeError::BadId(m.id.clone()));
    }
    if m.addr.peer_addr.trim().is_empty() {
        return Err(ChangeError::NoAddress(m.id.clone()));
    }
    Ok(())
}

/// A membership change an administrator asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfChange {
    /// Add a node that receives the log (snapshot, then entries) without voting.
    AddLearner(NewMember),
    /// Make a learner a voter.
    Promote(NodeId),
    /// Remove voters or learners (a leader removing itself steps down once the change is
    /// committed). More than one voter at once only under the unsafe variant.
    Remove(Vec<NodeId>),
    /// UNSAFE variant only: add voters directly, any number at once.
    AddVoters(Vec<NewMember>),
}

impl ConfChange {
    /// Short description for logs.
    pub fn describe(&self) -> String {
        match self {
            ConfChange::AddLearner(m) => format!("add learner {}", m.id),
            ConfChange::Promote(id) => format!("promote {id}"),
            ConfChange::Remove(ids) => format!("remove {}", ids.join(",")),
            ConfChange::AddVoters(ms) => format!(
                "add voters {}",
                ms.iter()
                    .map(|m| m.id.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
}

/// Why a membership change was refused (definitely not done).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeError {
    /// This node does not lead; retry at the leader (if known).
    #[error("this node is not the leader")]
    NotLeader(Option<NodeId>),
    /// The engine has no membership changes.
    #[error("the {0} engine does not support membership changes (use --engine raft)")]
    Unsupported(&'static str),
    /// A change is appended but not committed yet: one change at a time.
    #[error(
        "the membership change at log index {index} is not committed yet; one change at a \
         time, retry once it is"
    )]
    InProgress {
        /// Index of the uncommitted change entry.
        index: u64,
    },
    /// A new leader must commit an entry of its own term before changing membership.
    #[error(
        "this leader has not committed an entry of its term yet (a change now could conflict \
         with one an earlier leader left uncommitted); retry shortly"
    )]
    LeaderNotReady,
    /// The learner has not caught up with the leader yet.
    #[error(
        "learner {id} is not caught up: it has {matched} of {commit} committed entries; \
         retry when it has caught up"
    )]
    LearnerBehind {
        /// The learner.
        id: NodeId,
        /// Highest index known replicated to it.
        matched: u64,
        /// The leader's commit index.
        commit: u64,
    },
    /// The node to add is a member already.
    #[error("{0} is already a member")]
    AlreadyMember(NodeId),
    /// The node to promote votes already.
    #[error("{0} is already a voter")]
    AlreadyVoter(NodeId),
    /// The node to promote or remove is not a member.
    #[error("{0} is not a member")]
    NotMember(NodeId),
    /// The change would leave no voters.
    #[error("the change would leave no voters")]
    LastVoter,
    /// A change of several voters at once (only `--unsafe-multi-server-change` allows it).
    #[error(
        "changing {0} voters at once is not a single-server change; add a learner and \
         promote it, remove one voter at a time (--unsafe-multi-server-change allows it, \
         unsafely)"
    )]
    MultiServer(usize),
    /// No node named in the change.
    #[error("the change names no node")]
    Empty,
    /// A node id that cannot appear in `--peers` lists.
    #[error("{0:?} is not a valid node id (non-empty, no ',', '=', '/' or surrounding spaces)")]
    BadId(NodeId),
    /// A new member without a peer address.
    #[error("new member {0} needs a peer_addr")]
    NoAddress(NodeId),
    /// A sharded node (`--shards` > 1): its groups' configurations are fixed at start.
    #[error(
        "membership changes are not supported with --shards (every group's members are fixed \
         by --peers at start)"
    )]
    Sharded,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> BTreeSet<NodeId> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn new(id: &str) -> NewMember {
        NewMember {
            id: id.into(),
            addr: MemberAddr {
                peer_addr: format!("{id}:1"),
                ..MemberAddr::default()
            },
        }
    }

    #[test]
    fn single_server_changes_and_their_refusals() {
        let c = Membership::bootstrap(&ids(&["n1", "n2", "n3"]));
        let l = c.apply(&ConfChange::AddLearner(new("n4")), false).unwrap();
        assert_eq!(l.learners, ids(&["n4"]));
        assert_eq!(l.quorum(), 2, "learners do not count");
        let v = l.apply(&ConfChange::Promote("n4".into()), false).unwrap();
        assert_eq!(v.voters, ids(&["n1", "n2", "n3", "n4"]));
        assert_eq!(v.quorum(), 3);
        assert_eq!(
            v.apply(&ConfChange::Promote("n4".into()), false),
            Err(ChangeError::AlreadyVoter("n4".into()))
        );
        assert_eq!(
            c.apply(&ConfChange::Remove(vec!["n1".into(), "n2".into()]), false),
            Err(ChangeError::MultiServer(2))
        );
        assert_eq!(
            c.apply(&ConfChange::AddVoters(vec![new("n4"), new("n5")]), false),
            Err(ChangeError::MultiServer(2))
        );
        let both = c
            .apply(&ConfChange::AddVoters(vec![new("n4"), new("n5")]), true)
            .unwrap();
        assert_eq!(both.voters.len(), 5);
        let one = Membership::bootstrap(&ids(&["n1"]));
        assert_eq!(
            one.apply(&ConfChange::Remove(vec!["n1".into()]), false),
            Err(ChangeError::LastVoter)
        );
        let mut bad = new("a,b");
        assert!(matches!(
            c.apply(&ConfChange::AddLearner(bad.clone()), false),
            Err(ChangeError::BadId(_))
        ));
        bad.id = "n9".into();
        bad.addr.peer_addr = " ".into();
        assert_eq!(
            c.apply(&ConfChange::AddLearner(bad), false),
            Err(ChangeError::NoAddress("n9".into()))
        );
    }

    #[test]
    fn per_dialer_address_overrides_the_default() {
        let mut a = MemberAddr {
            peer_addr: "x:1".into(),
            ..MemberAddr::default()
        };
        a.peer_addr_via.insert("n1".into(), "proxy:7".into());
        assert_eq!(a.for_dialer("n1"), "proxy:7");
        assert_eq!(a.for_dialer("n2"), "x:1");
    }
}
