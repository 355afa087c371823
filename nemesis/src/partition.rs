//! Partition shapes and the grudge they produce.
//!
//! A [`Grudge`] maps a node to the set of nodes whose traffic it drops. Every standard shape
//! is symmetric: if `a` drops `b`, `b` drops `a`, so both directions of a link are cut.
//! Shapes (Jepsen's names in brackets):
//! - `halves`: a random minority vs the majority [partition-random-halves];
//! - `one`: one random node alone [partition-random-node];
//! - `ring`: every node sees a majority, but no two see the same one [partition-majorities-ring];
//! - `bridge`: two halves joined by one node that sees both [bridge];
//! - `leader`: the current leader alone, resolved at injection time.

use crate::{NemesisError, NodeId};
pub use checkers::fault::{complete_cut, cut_links, isolate, Grudge, PartitionShape};
use rand::seq::SliceRandom;
use rand::Rng;

/// Drawing a random grudge of a shape: the nemesis's side of [`PartitionShape`] (the shape
/// itself is history data and lives in `checkers::fault`).
pub trait DrawGrudge {
    /// Draws a grudge of this shape over `nodes` (empty for `IsolateLeader`: the injector
    /// resolves it, see [`crate::Fault::resolve`]).
    fn grudge<R: Rng>(self, nodes: &[NodeId], rng: &mut R) -> Grudge;
}

impl DrawGrudge for PartitionShape {
    fn grudge<R: Rng>(self, nodes: &[NodeId], rng: &mut R) -> Grudge {
        let mut shuffled = nodes.to_vec();
        shuffled.shuffle(rng);
        let n = shuffled.len();
        match self {
            PartitionShape::IsolateLeader => Grudge::new(),
            _ if n < 2 => Grudge::new(),
            PartitionShape::One => isolate(nodes, &shuffled[0]),
            PartitionShape::Halves => {
                let (a, b) = shuffled.split_at(n / 2);
                complete_cut(a, b)
            }
            PartitionShape::Bridge if n >= 3 => {
                let bridge = &shuffled[0];
                let rest = &shuffled[1..];
                let (a, b) = rest.split_at(rest.len() / 2);
                let mut g = complete_cut(a, b);
                g.entry(bridge.clone()).or_default();
                g
            }
            PartitionShape::Bridge => complete_cut(&shuffled[..1], &shuffled[1..]),
            PartitionShape::Ring if n <= 3 => isolate(nodes, &shuffled[0]),
            PartitionShape::Ring => {
                let reach = ring_reach(n);
                let mut g = Grudge::new();
                for i in 0..n {
                    let set = g.entry(shuffled[i].clone()).or_default();
                    for (j, other) in shuffled.iter().enumerate() {
                        let d = (i + n - j) % n;
                        if d.min(n - d) > reach {
                            set.insert(other.clone());
                        }
                    }
                }
                g
            }
        }
    }
}

/// How far along the ring a node still sees in a majorities ring of `n` nodes: it sees
/// itself plus `reach` neighbours on each side, `2*reach + 1` = the smallest majority.
fn ring_reach(n: usize) -> usize {
    (n / 2).div_ceil(2)
}

/// Parses `--partition-shapes`: `all` or a comma-separated list.
pub fn parse_shapes(s: &str) -> Result<Vec<PartitionShape>, NemesisError> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part == "all" {
            out.extend(PartitionShape::ALL);
        } else {
            out.push(
                part.parse()
                    .map_err(|e: checkers::fault::UnknownShape| NemesisError::UnknownShape(e.0))?,
            );
        }
    }
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn nodes(n: usize) -> Vec<NodeId> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn symmetric(g: &Grudge) -> bool {
        g.iter()
            .all(|(a, s)| s.iter().all(|b| g.get(b).is_some_and(|t| t.contains(a))))
    }

    #[test]
    fn shapes_are_symmetric_and_leave_someone_connected() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for n in [3, 5] {
            let ns = nodes(n);
            for shape in PartitionShape::ALL {
                let g = shape.grudge(&ns, &mut rng);
                assert!(symmetric(&g), "{shape:?} {g:?}");
                if shape != PartitionShape::IsolateLeader {
                    assert!(
                        !cut_links(&g).is_empty(),
                        "{shape:?} cuts nothing for n={n}"
                    );
                }
            }
        }
    }

    #[test]
    fn ring_gives_everyone_a_majority() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let ns = nodes(5);
        let g = PartitionShape::Ring.grudge(&ns, &mut rng);
        for n in &ns {
            let dropped = g.get(n).map_or(0, |s| s.len());
            assert_eq!(
                5 - dropped,
                3,
                "{n} sees a majority of 3 (incl. itself): {g:?}"
            );
        }
    }

    #[test]
    fn halves_is_minority_vs_majority() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let g = PartitionShape::Halves.grudge(&nodes(5), &mut rng);
        let mut sizes: Vec<usize> = g.values().map(|s| s.len()).collect();
        sizes.sort();
        assert_eq!(sizes, vec![2, 2, 2, 3, 3]);
    }
}
