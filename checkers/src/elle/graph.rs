//! The transaction dependency graph and the searches over it: a compact adjacency (CSR) whose
//! edges carry a bit set of relations (ww, wr, rw, process, realtime), Tarjan's strongly
//! connected components, Elle's linear real-time edge construction, and a breadth-first search
//! for the shortest cycle through a vertex under constraints on the edge labels it uses.
//!
//! Nothing here knows about lists or keys; [`super::list_append`] produces the data edges and
//! [`super::cycles`] decides which constrained searches to run.

use crate::txn::{Txn, TxnStatus};
use std::time::Instant;

/// `a` wrote a version that `b` overwrote.
pub(crate) const WW: u8 = 1;
/// `b` read a version `a` wrote.
pub(crate) const WR: u8 = 2;
/// `a` read a version that `b` overwrote (anti-dependency).
pub(crate) const RW: u8 = 4;
/// The same process ran `a`, then `b`.
pub(crate) const PROCESS: u8 = 8;
/// `a` completed before `b` was invoked.
pub(crate) const REALTIME: u8 = 16;
/// Every data relation.
pub(crate) const DATA: u8 = WW | WR | RW;

/// Label order used when one edge carries several relations and nothing else decides: data
/// before session/real-time, and anti-dependencies last among the data relations (a cycle
/// labelled with fewer rw edges is the more severe class).
const PRIORITY: [u8; 5] = [WW, WR, RW, PROCESS, REALTIME];

/// A directed graph over transaction ids, adjacency in compressed rows; parallel edges are
/// merged into one edge whose bits are the union, self-loops are dropped.
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    start: Vec<u32>,
    to: Vec<u32>,
    bits: Vec<u8>,
}

impl Graph {
    /// Builds the graph on `n` vertices from `(from, to, bits)` triples (counting sort by
    /// source, then a small sort per row to merge duplicates).
    pub(crate) fn from_edges(n: usize, edges: &[(u32, u32, u8)]) -> Graph {
        let mut count = vec![0u32; n + 1];
        for &(a, b, _) in edges {
            if a != b {
                count[a as usize + 1] += 1;
            }
        }
        for i in 0..n {
            count[i + 1] += count[i];
        }
        let mut fill = count.clone();
        let mut raw = vec![(0u32, 0u8); count[n] as usize];
        for &(a, b, bits) in edges {
            if a != b {
                let slot = &mut fill[a as usize];
                raw[*slot as usize] = (b, bits);
                *slot += 1;
            }
        }
        let mut start = Vec::with_capacity(n + 1);
        let mut to = Vec::with_capacity(raw.len());
        let mut bits = Vec::with_capacity(raw.len());
        start.push(0);
        for v in 0..n {
            let row = &mut raw[count[v] as usize..count[v + 1] as usize];
            row.sort_unstable_by_key(|&(b, _)| b);
            for &(b, e) in row.iter() {
                if to.len() > *start.last().expect("start") as usize
                    && *to.last().expect("row") == b
                {
                    *bits.last_mut().expect("row") |= e;
                } else {
                    to.push(b);
                    bits.push(e);
                }
            }
            start.push(to.len() as u32);
        }
        Graph { start, to, bits }
    }

    /// Number of vertices.
    pub(crate) fn len(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    /// Number of (merged) edges.
    pub(crate) fn edge_count(&self) -> usize {
        self.to.len()
    }

    /// Out-edges of `v` as `(target, bits)`.
    pub(crate) fn out(&self, v: u32) -> impl Iterator<Item = (u32, u8)> + '_ {
        let (a, b) = (
            self.start[v as usize] as usize,
            self.start[v as usize + 1] as usize,
        );
        self.to[a..b]
            .iter()
            .copied()
            .zip(self.bits[a..b].iter().copied())
    }

    /// The relations on the edge `a -> b` (0 if none).
    #[cfg(test)]
    pub(crate) fn bits(&self, a: u32, b: u32) -> u8 {
        self.out(a).find(|&(t, _)| t == b).map_or(0, |(_, e)| e)
    }

    /// The subgraph induced by `vertices` (renumbered 0.. in the given order), keeping only
    /// edge bits in `mask`. `local` is scratch of length `self.len()` filled with `u32::MAX`,
    /// and is left that way.
    pub(crate) fn induced(&self, vertices: &[u32], mask: u8, local: &mut [u32]) -> Graph {
        for (i, &v) in vertices.iter().enumerate() {
            local[v as usize] = i as u32;
        }
        let mut edges = Vec::new();
        for (i, &v) in vertices.iter().enumerate() {
            for (w, e) in self.out(v) {
                let lw = local[w as usize];
                if lw != u32::MAX && e & mask != 0 {
                    edges.push((i as u32, lw, e & mask));
                }
            }
        }
        for &v in vertices {
            local[v as usize] = u32::MAX;
        }
        Graph::from_edges(vertices.len(), &edges)
    }
}

/// Strongly connected components over the edges with a bit in `mask` (Tarjan, iterative).
/// Returns each vertex's component id and the number of components; ids are assigned in
/// reverse topological order: an edge `a -> b` between components has `comp[a] > comp[b]`.
pub(crate) fn scc(g: &Graph, mask: u8) -> (Vec<u32>, u32) {
    const NONE: u32 = u32::MAX;
    let n = g.len();
    let mut index = vec![NONE; n];
    let mut low = vec![0u32; n];
    let mut comp = vec![NONE; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    // (vertex, position of the next out-edge to look at)
    let mut call: Vec<(u32, u32)> = Vec::new();
    let mut next_index = 0u32;
    let mut comps = 0u32;
    for root in 0..n as u32 {
        if index[root as usize] != NONE {
            continue;
        }
        call.push((root, g.start[root as usize]));
        index[root as usize] = next_index;
        low[root as usize] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        while let Some(&mut (v, ref mut pos)) = call.last_mut() {
            let end = g.start[v as usize + 1];
            let mut descended = false;
            while *pos < end {
                let p = *pos as usize;
                *pos += 1;
                if g.bits[p] & mask == 0 {
                    continue;
                }
                let w = g.to[p];
                if index[w as usize] == NONE {
                    index[w as usize] = next_index;
                    low[w as usize] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w as usize] = true;
                    call.push((w, g.start[w as usize]));
                    descended = true;
                    break;
                } else if on_stack[w as usize] {
                    low[v as usize] = low[v as usize].min(index[w as usize]);
                }
            }
            if descended {
                continue;
            }
            call.pop();
            if let Some(&(parent, _)) = call.last() {
                low[parent as usize] = low[parent as usize].min(low[v as usize]);
            }
            if low[v as usize] == index[v as usize] {
                loop {
                    let w = stack.pop().expect("tarjan stack");
                    on_stack[w as usize] = false;
                    comp[w as usize] = comps;
                    if w == v {
                        break;
                    }
                }
                comps += 1;
            }
        }
    }
    (comp, comps)
}

/// Groups vertices by component, keeping only components of two or more vertices (the graph
/// has no self-loops, so only those contain cycles).
pub(crate) fn nontrivial(comp: &[u32], comps: u32) -> Vec<Vec<u32>> {
    let mut size = vec![0u32; comps as usize];
    for &c in comp {
        if c != u32::MAX {
            size[c as usize] += 1;
        }
    }
    let mut slot = vec![u32::MAX; comps as usize];
    let mut out: Vec<Vec<u32>> = Vec::new();
    for (v, &c) in comp.iter().enumerate() {
        if c == u32::MAX || size[c as usize] < 2 {
            continue;
        }
        if slot[c as usize] == u32::MAX {
            slot[c as usize] = out.len() as u32;
            out.push(Vec::with_capacity(size[c as usize] as usize));
        }
        out[slot[c as usize] as usize].push(v as u32);
    }
    out
}

/// Real-time edges `a -> b` (a completed before b was invoked), as Elle builds them: only to
/// the next "frontier" instead of all O(n²) pairs. Walking events in history order, every
/// invoke of a transaction in the graph gets an edge from each buffered completion; a new
/// completion evicts from the buffer every transaction that already precedes it, since order
/// through it is transitive. The buffer stays about as large as the concurrency, so the edge
/// count is O(n · concurrency). Only committed transactions complete; unknown ones are
/// invoked but never buffered (nothing can be known to follow them).
pub(crate) fn realtime_edges(txns: &[Txn], out: &mut Vec<(u32, u32, u8)>) {
    // (history index, 0 = completion / 1 = invoke, txn). At equal indices completions sort
    // first, which only matters for hand-written histories without distinct indices.
    let mut evs: Vec<(u64, u8, u32)> = Vec::with_capacity(txns.len() * 2);
    for t in txns {
        if t.status == TxnStatus::Fail {
            continue;
        }
        evs.push((t.invoke_index, 1, t.id as u32));
        if let (TxnStatus::Ok, Some(done)) = (t.status, t.complete_index) {
            evs.push((done, 0, t.id as u32));
        }
    }
    evs.sort_unstable();
    let mut buffer: Vec<u32> = Vec::new();
    let mut live = vec![false; txns.len()];
    let mut preds: Vec<(u32, u32)> = vec![(0, 0); txns.len()];
    for (_, kind, t) in evs {
        if kind == 1 {
            let from = out.len() as u32;
            out.extend(buffer.iter().map(|&p| (p, t, REALTIME)));
            preds[t as usize] = (from, out.len() as u32);
        } else {
            let (a, b) = preds[t as usize];
            for e in &out[a as usize..b as usize] {
                live[e.0 as usize] = false;
            }
            buffer.retain(|&p| live[p as usize]);
            buffer.push(t);
            live[t as usize] = true;
        }
    }
}

/// Process-order edges: consecutive committed transactions of each process (a process is
/// sequential; Elle relates only `ok` operations).
pub(crate) fn process_edges(txns: &[Txn], out: &mut Vec<(u32, u32, u8)>) {
    let mut last: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
    for t in txns.iter().filter(|t| t.status == TxnStatus::Ok) {
        if let Some(p) = last.insert(t.process, t.id as u32) {
            out.push((p, t.id as u32, PROCESS));
        }
    }
}

/// How many anti-dependency (rw) edges a cycle must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RwRule {
    /// None (rw is not an allowed label).
    Zero,
    /// Exactly one.
    One,
    /// Two or more.
    TwoPlus,
}

/// Constraints on the labels of a cycle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CycleSpec {
    /// Labels other than rw the cycle may use.
    pub allowed: u8,
    /// How many rw labels it needs.
    pub rw: RwRule,
    /// At least one label must be in this set (0 = no constraint).
    pub need_a: u8,
    /// And at least one in this set (0 = no constraint).
    pub need_b: u8,
}

impl CycleSpec {
    fn mask(&self) -> u8 {
        self.allowed | if self.rw == RwRule::Zero { 0 } else { RW }
    }
}

/// A cycle: `(from, to, label)` steps with `steps[i].1 == steps[i + 1].0`, closing on itself.
pub(crate) type Cycle = Vec<(u32, u32, u8)>;

/// The search ran out of time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutOfTime;

/// Reusable buffers for [`find_cycle`], so that many searches allocate once.
#[derive(Default)]
pub(crate) struct Scratch {
    stamp: Vec<u32>,
    parent: Vec<(u32, u8)>,
    queue: Vec<u32>,
    epoch: u32,
}

const STATES: usize = 12; // rw count 0..=2 × need_a × need_b

fn state(v: u32, rw: u8, a: u8, b: u8) -> u32 {
    v * STATES as u32 + (rw as u32) * 4 + (a as u32) * 2 + b as u32
}

/// Finds a cycle in `g` satisfying `spec`, or `None` if there is none.
///
/// The cycle must lie inside one strongly connected component of the `spec`-labelled
/// subgraph, so that is computed first (an exact and linear answer when it has none), and the
/// search never leaves the component of its start. Starts are the sources of the rarest
/// required relation (rw, else `need_a`, else one vertex per component), so a found cycle is
/// the shortest through its start. For exactly-one-rw cycles the non-rw condensation prunes:
/// before the rw edge the walk may only descend in topological order from the start, after it
/// only ascend back to it. `deadline` bounds the time.
pub(crate) fn find_cycle(
    g: &Graph,
    spec: CycleSpec,
    scratch: &mut Scratch,
    deadline: Option<Instant>,
) -> Result<Option<Cycle>, OutOfTime> {
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Err(OutOfTime);
    }
    let mask = spec.mask();
    let (comp, comps) = scc(g, mask);
    let mut size = vec![0u32; comps as usize];
    for &c in &comp {
        size[c as usize] += 1;
    }
    let inside = |a: u32, b: u32| comp[a as usize] == comp[b as usize];
    // Topological rank of each vertex in the non-rw condensation (for RwRule::One).
    let topo = if spec.rw == RwRule::One {
        Some(scc(g, spec.allowed).0)
    } else {
        None
    };
    let start_bits = match spec.rw {
        RwRule::Zero if spec.need_a != 0 => spec.need_a,
        RwRule::Zero => 0,
        _ => RW,
    };
    let mut starts: Vec<u32> = Vec::new();
    let mut taken = vec![false; g.len()];
    let mut comp_taken = vec![false; comps as usize];
    for v in 0..g.len() as u32 {
        if size[comp[v as usize] as usize] < 2 {
            continue;
        }
        if start_bits == 0 {
            if !comp_taken[comp[v as usize] as usize] {
                comp_taken[comp[v as usize] as usize] = true;
                starts.push(v);
            }
            continue;
        }
        let mut sure = false;
        let mut any = false;
        for (w, e) in g.out(v) {
            if e & start_bits != 0 && inside(v, w) {
                any = true;
                if let Some(t) = &topo {
                    sure |= t[v as usize] == t[w as usize];
                }
            }
        }
        if any && !taken[v as usize] {
            taken[v as usize] = true;
            // Rw edges inside one non-rw component close a cycle for sure: try those first.
            if sure {
                starts.insert(0, v);
            } else {
                starts.push(v);
            }
        }
    }
    for s in starts {
        if let Some(c) = bfs_from(g, spec, s, &comp, topo.as_deref(), scratch, deadline)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// Shortest walk from `s` back to `s` meeting `spec`, staying in `s`'s component.
fn bfs_from(
    g: &Graph,
    spec: CycleSpec,
    s: u32,
    comp: &[u32],
    topo: Option<&[u32]>,
    sc: &mut Scratch,
    deadline: Option<Instant>,
) -> Result<Option<Cycle>, OutOfTime> {
    let n_states = g.len() * STATES;
    if sc.stamp.len() < n_states {
        sc.stamp.resize(n_states, 0);
        sc.parent.resize(n_states, (0, 0));
    }
    sc.epoch = sc.epoch.wrapping_add(1);
    if sc.epoch == 0 {
        sc.stamp.iter_mut().for_each(|x| *x = 0);
        sc.epoch = 1;
    }
    let epoch = sc.epoch;
    let mask = spec.mask();
    let home = comp[s as usize];
    let start = state(s, 0, 0, 0);
    sc.queue.clear();
    sc.queue.push(start);
    sc.stamp[start as usize] = epoch;
    let mut head = 0;
    while head < sc.queue.len() {
        if head % 4096 == 4095 && deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(OutOfTime);
        }
        let cur = sc.queue[head];
        head += 1;
        let v = cur / STATES as u32;
        let rest = cur % STATES as u32;
        let (rw, a, b) = ((rest / 4) as u8, ((rest / 2) % 2) as u8, (rest % 2) as u8);
        for (w, e) in g.out(v) {
            if comp[w as usize] != home {
                continue;
            }
            let labels = e & mask;
            if labels == 0 {
                continue;
            }
            for &l in &PRIORITY {
                if labels & l == 0 {
                    continue;
                }
                let rw2 = if l == RW { (rw + 1).min(2) } else { rw };
                if spec.rw == RwRule::One && rw2 > 1 {
                    continue;
                }
                if let Some(t) = topo {
                    // Before the rw edge: s reaches w without rw, so w ranks no higher; after
                    // it: w reaches s without rw, so w ranks no lower.
                    let ok = if rw2 == 0 {
                        t[w as usize] <= t[s as usize]
                    } else {
                        t[w as usize] >= t[s as usize]
                    };
                    if !ok {
                        continue;
                    }
                }
                let a2 = a | u8::from(l & spec.need_a != 0);
                let b2 = b | u8::from(l & spec.need_b != 0);
                if w == s {
                    let rw_ok = match spec.rw {
                        RwRule::Zero => rw2 == 0,
                        RwRule::One => rw2 == 1,
                        RwRule::TwoPlus => rw2 == 2,
                    };
                    if rw_ok && (spec.need_a == 0 || a2 == 1) && (spec.need_b == 0 || b2 == 1) {
                        return Ok(Some(unwind(sc, start, cur, (v, w, l))));
                    }
                    continue; // a walk through the start again would not be a simple cycle
                }
                let next = state(w, rw2, a2, b2);
                if sc.stamp[next as usize] != epoch {
                    sc.stamp[next as usize] = epoch;
                    sc.parent[next as usize] = (cur, l);
                    sc.queue.push(next);
                }
            }
        }
    }
    Ok(None)
}

fn unwind(sc: &Scratch, start: u32, mut cur: u32, last: (u32, u32, u8)) -> Cycle {
    let mut steps = vec![last];
    while cur != start {
        let v = cur / STATES as u32;
        let (p, l) = sc.parent[cur as usize];
        steps.push((p / STATES as u32, v, l));
        cur = p;
    }
    steps.reverse();
    steps
}

/// Some cycle through a vertex of the strongly connected `g` (which must have ≥ 2 vertices),
/// labelled by priority, for when a classifying search ran out of time: one BFS, linear.
pub(crate) fn any_cycle(g: &Graph, mask: u8) -> Option<Cycle> {
    // Plain BFS from vertex 0 back to it, every relation in `mask` allowed.
    let mut parent = vec![(u32::MAX, 0u8); g.len()];
    let mut queue = std::collections::VecDeque::from([0u32]);
    while let Some(v) = queue.pop_front() {
        for (w, e) in g.out(v) {
            let e = e & mask;
            if e == 0 {
                continue;
            }
            let l = PRIORITY.iter().copied().find(|&l| e & l != 0).expect("bit");
            if w == 0 {
                let mut steps = vec![(v, 0, l)];
                let mut cur = v;
                while cur != 0 {
                    let (p, pl) = parent[cur as usize];
                    steps.push((p, cur, pl));
                    cur = p;
                }
                steps.reverse();
                return Some(steps);
            }
            if parent[w as usize].0 == u32::MAX {
                parent[w as usize] = (v, l);
                queue.push_back(w);
            }
        }
    }
    None
}

/// Splits a closed walk into simple cycles (a walk found in the product graph may pass a
/// vertex twice with different label counts).
pub(crate) fn simple_cycles(walk: &Cycle) -> Vec<Cycle> {
    let mut out = Vec::new();
    let mut stack: Vec<(u32, u32, u8)> = Vec::new();
    for &step in walk {
        // If this step returns to a vertex already on the stack, pop that loop off.
        if let Some(pos) = stack.iter().position(|&(from, _, _)| from == step.1) {
            let mut c: Cycle = stack.split_off(pos);
            c.push(step);
            out.push(c);
        } else {
            stack.push(step);
        }
    }
    if !stack.is_empty() {
        out.push(stack);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tarjan_finds_components_in_reverse_topological_order() {
        // 0 -> 1 -> 2 -> 0, 2 -> 3, 3 -> 4 -> 3
        let g = Graph::from_edges(
            5,
            &[
                (0, 1, WW),
                (1, 2, WW),
                (2, 0, WW),
                (2, 3, WR),
                (3, 4, RW),
                (4, 3, RW),
            ],
        );
        let (c, n) = scc(&g, DATA);
        assert_eq!(n, 2);
        assert_eq!(c[0], c[1]);
        assert_eq!(c[1], c[2]);
        assert_eq!(c[3], c[4]);
        assert!(c[2] > c[3], "edge 2 -> 3 goes to a lower id");
        let (_, n) = scc(&g, WW);
        assert_eq!(n, 3, "without rw, 3 and 4 split");
    }

    #[test]
    fn duplicate_edges_merge_their_bits() {
        let g = Graph::from_edges(2, &[(0, 1, WW), (0, 1, RW), (1, 1, WR)]);
        assert_eq!(g.edge_count(), 1);
        assert_eq!(g.bits(0, 1), WW | RW);
    }

    #[test]
    fn constrained_search_respects_rw_counts() {
        // 0 -rw-> 1 -wr-> 0 (one rw); 2 -rw-> 3 -rw-> 2 (two rw)
        let g = Graph::from_edges(4, &[(0, 1, RW), (1, 0, WR), (2, 3, RW), (3, 2, RW)]);
        let mut sc = Scratch::default();
        let one = CycleSpec {
            allowed: WW | WR,
            rw: RwRule::One,
            need_a: 0,
            need_b: 0,
        };
        let c = find_cycle(&g, one, &mut sc, None).unwrap().unwrap();
        assert_eq!(c.len(), 2);
        assert!(c.iter().all(|s| s.0 < 2));
        let two = CycleSpec {
            rw: RwRule::TwoPlus,
            ..one
        };
        let c = find_cycle(&g, two, &mut sc, None).unwrap().unwrap();
        assert!(c.iter().all(|s| s.0 >= 2 && s.2 == RW));
        let none = CycleSpec {
            allowed: WW | WR,
            rw: RwRule::Zero,
            need_a: 0,
            need_b: 0,
        };
        assert!(find_cycle(&g, none, &mut sc, None).unwrap().is_none());
    }

    #[test]
    fn realtime_edges_link_only_the_frontier() {
        use crate::txn::{Txn, TxnStatus};
        // a: [0,1]  b: [2,3]  c: [4,5]  — a chain; a -> c must not be emitted.
        let t = |id: usize, i: u64| Txn {
            id,
            process: id as u64,
            status: TxnStatus::Ok,
            mops: vec![],
            invoke_index: i,
            complete_index: Some(i + 1),
            call: i,
            ret: Some(i + 1),
            invoke_line: 1,
            complete_line: Some(2),
        };
        let mut out = Vec::new();
        realtime_edges(&[t(0, 0), t(1, 2), t(2, 4)], &mut out);
        assert_eq!(out, vec![(0, 1, REALTIME), (1, 2, REALTIME)]);
    }
}
