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
/// Leaves a hub vertex: continues the rw edge that entered it (see [`Edges::fan`]).
pub(crate) const VIA: u8 = 32;
/// Every data relation.
pub(crate) const DATA: u8 = WW | WR | RW | VIA;

/// Label order used when one edge carries several relations and nothing else decides: data
/// before session/real-time, and anti-dependencies last among the data relations (a cycle
/// labelled with fewer rw edges is the more severe class).
const PRIORITY: [u8; 6] = [WW, WR, RW, PROCESS, REALTIME, VIA];

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

    /// The same vertices with only the edges (and bits) in `mask`.
    pub(crate) fn filtered(&self, mask: u8) -> Graph {
        let mut start = Vec::with_capacity(self.start.len());
        let (mut to, mut bits) = (Vec::new(), Vec::new());
        start.push(0);
        for v in 0..self.len() as u32 {
            for (w, e) in self.out(v) {
                if e & mask != 0 {
                    to.push(w);
                    bits.push(e & mask);
                }
            }
            start.push(to.len() as u32);
        }
        Graph { start, to, bits }
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

/// Edges being collected, and the vertex count (transactions, then hub vertices).
pub(crate) struct Edges {
    /// `(from, to, relations)`.
    pub list: Vec<(u32, u32, u8)>,
    /// Vertices so far: ids at or above the transaction count are hubs.
    pub vertices: u32,
    /// Reader × writer products above this go through a hub.
    fan_limit: usize,
}

/// Above this many reader-writer pairs, [`Edges::fan`] uses a hub vertex.
pub(crate) const FAN_LIMIT: usize = 64;

impl Edges {
    /// Room for about `per_txn` edges per transaction; hubs beyond `fan_limit` pairs.
    pub(crate) fn new(txns: usize, per_txn: usize, fan_limit: usize) -> Edges {
        Edges {
            list: Vec::with_capacity(txns * per_txn),
            vertices: txns as u32,
            fan_limit,
        }
    }

    /// Rw edges from every reader to every writer but itself. Many readers of one state and
    /// many writers after it (appends no read shows, registers read as null) would make
    /// |readers| × |writers| edges, hundreds of millions on a hot key; beyond a few dozen they
    /// go through one hub vertex instead: reader -rw-> hub -via-> writer, a two-step path the
    /// cycle search counts as one rw edge and merges back before reporting. A reader that is
    /// also a writer keeps direct edges, so no reader -> hub -> itself loop can appear.
    pub(crate) fn fan(&mut self, readers: &[u32], writers: &[u32]) {
        if readers.len().saturating_mul(writers.len()) <= self.fan_limit {
            for &r in readers {
                self.list
                    .extend(writers.iter().filter(|&&w| w != r).map(|&w| (r, w, RW)));
            }
            return;
        }
        let mut ws = writers.to_vec();
        ws.sort_unstable();
        ws.dedup();
        let hub = self.vertices;
        self.vertices += 1;
        for &r in readers {
            if ws.binary_search(&r).is_ok() {
                self.list
                    .extend(ws.iter().filter(|&&w| w != r).map(|&w| (r, w, RW)));
            } else {
                self.list.push((r, hub, RW));
            }
        }
        self.list.extend(ws.iter().map(|&w| (hub, w, VIA)));
    }
}

/// Rewrites a walk over the graph's vertices into one over transactions: each
/// `reader -rw-> hub -via-> writer` pair becomes `reader -rw-> writer`. `real` is the number
/// of transactions (hub ids are at or above it).
pub(crate) fn merge_hubs(walk: &Cycle, real: u32) -> Cycle {
    let mut w = walk.clone();
    if let Some(first) = w.iter().position(|s| s.0 < real) {
        w.rotate_left(first);
    }
    let mut out: Cycle = Vec::with_capacity(w.len());
    for s in w {
        match out.last_mut() {
            Some(last) if last.1 >= real && s.0 == last.1 => last.1 = s.1,
            _ => out.push(s),
        }
    }
    out
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
    /// Any number (used when any cycle will do).
    Any,
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
    pub(crate) fn mask(&self) -> u8 {
        self.allowed | if self.rw == RwRule::Zero { 0 } else { RW | VIA }
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
    /// Edges looked at so far: the deadline is checked by work done, not by time alone.
    work: u64,
}

impl Scratch {
    fn check(&self, deadline: Option<Instant>) -> Result<(), OutOfTime> {
        match deadline {
            Some(d) if Instant::now() >= d => Err(OutOfTime),
            _ => Ok(()),
        }
    }
}

const STATES: usize = 12; // rw count 0..=2 × need_a × need_b

fn state(v: u32, rw: u8, a: u8, b: u8) -> u32 {
    v * STATES as u32 + (rw as u32) * 4 + (a as u32) * 2 + b as u32
}

/// Finds a cycle in `g` satisfying `spec`, or `None` if there is none. `deadline` bounds the
/// time; the search checks it every few tens of thousands of edges.
///
/// A cycle lies inside one strongly connected component of the `spec`-labelled subgraph, so
/// that is computed first (an exact, linear answer when there is none) and no walk leaves the
/// component of its start. Exactly-one-rw cycles go to [`find_single_rw`]. Otherwise a
/// breadth-first search over (vertex, rw count, needs met) states runs from the sources of
/// the rarest required relation (rw, else `need_a`, else one vertex per component), so the
/// cycle found is the shortest through its start.
pub(crate) fn find_cycle(
    g: &Graph,
    spec: CycleSpec,
    sc: &mut Scratch,
    deadline: Option<Instant>,
) -> Result<Option<Cycle>, OutOfTime> {
    sc.check(deadline)?;
    if spec.rw == RwRule::One {
        return find_single_rw(g, spec, sc, deadline);
    }
    let mask = spec.mask();
    let (comp, comps) = scc(g, mask);
    let size = comp_sizes(&comp, comps);
    let start_bits = match spec.rw {
        RwRule::Zero | RwRule::Any if spec.need_a != 0 => spec.need_a,
        RwRule::Zero | RwRule::Any => 0,
        _ => RW,
    };
    let mut comp_taken = vec![false; comps as usize];
    for v in 0..g.len() as u32 {
        let c = comp[v as usize] as usize;
        if size[c] < 2 {
            continue;
        }
        let start = if start_bits == 0 {
            !std::mem::replace(&mut comp_taken[c], true)
        } else {
            g.out(v)
                .any(|(w, e)| e & start_bits != 0 && comp[w as usize] == comp[v as usize])
        };
        if start {
            if let Some(c) = bfs(g, spec, (v, v), Some(&comp), sc, deadline)? {
                return Ok(Some(c));
            }
        }
    }
    Ok(None)
}

/// Some simple cycle using only relations in `mask` (the shortest through the first vertex
/// of a cyclic component), or `None` if that subgraph is acyclic. Linear; ignores deadlines.
/// Used when every less severe class is known absent, so any cycle has the class sought, and
/// when the budget ran out.
pub(crate) fn find_any(g: &Graph, mask: u8, sc: &mut Scratch) -> Option<Cycle> {
    let (comp, comps) = scc(g, mask);
    let size = comp_sizes(&comp, comps);
    let v = (0..g.len() as u32).find(|&v| size[comp[v as usize] as usize] >= 2)?;
    let spec = CycleSpec {
        allowed: mask & !RW,
        rw: if mask & RW != 0 {
            RwRule::Any
        } else {
            RwRule::Zero
        },
        need_a: 0,
        need_b: 0,
    };
    bfs(g, spec, (v, v), Some(&comp), sc, None).ok().flatten()
}

fn comp_sizes(comp: &[u32], comps: u32) -> Vec<u32> {
    let mut size = vec![0u32; comps as usize];
    for &c in comp {
        size[c as usize] += 1;
    }
    size
}

/// A cycle with exactly one rw edge, exactly and in near-linear time: it exists iff some rw
/// edge `u -> v` has a path `v ⇝ u` over the other allowed relations. Condense that subgraph
/// (Tarjan); an rw edge inside one component closes a cycle at once; otherwise `v`'s
/// component must reach `u`'s in the condensation (a DAG, ids in reverse topological order),
/// decided for 64 target components at a time with bit sets pushed from sinks to sources.
/// The path is then extracted by one BFS that also meets `need_a` / `need_b`.
fn find_single_rw(
    g: &Graph,
    spec: CycleSpec,
    sc: &mut Scratch,
    deadline: Option<Instant>,
) -> Result<Option<Cycle>, OutOfTime> {
    // The rw edges may be many more than the others: walk the others on their own.
    // Hub vertices' VIA edges stay: a path back may start at a hub an rw edge entered.
    let rest = g.filtered(spec.allowed | VIA);
    let (comp, comps) = scc(&rest, spec.allowed | VIA);
    let mut sure: Vec<(u32, u32)> = Vec::new();
    let mut maybe: Vec<(u32, u32)> = Vec::new();
    for u in 0..g.len() as u32 {
        for (v, e) in g.out(u) {
            if e & RW == 0 {
                continue;
            }
            let (cu, cv) = (comp[u as usize], comp[v as usize]);
            if cu == cv {
                sure.push((u, v));
            } else if cv > cu {
                maybe.push((u, v)); // v can only reach components with lower ids
            }
        }
    }
    let path_back = |(u, v): (u32, u32), sc: &mut Scratch| -> Result<Option<Cycle>, OutOfTime> {
        let back = CycleSpec {
            allowed: spec.allowed | VIA,
            rw: RwRule::Zero,
            ..spec
        };
        Ok(bfs(&rest, back, (v, u), None, sc, deadline)?.map(|mut p| {
            p.insert(0, (u, v, RW));
            p
        }))
    };
    for &edge in &sure {
        if let Some(c) = path_back(edge, sc)? {
            return Ok(Some(c));
        }
    }
    if maybe.is_empty() {
        return Ok(None);
    }
    // Members of each component, to walk the condensation in id order.
    let mut start = vec![0u32; comps as usize + 1];
    for &c in &comp {
        start[c as usize + 1] += 1;
    }
    for i in 0..comps as usize {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut members = vec![0u32; g.len()];
    for (v, &c) in comp.iter().enumerate() {
        members[fill[c as usize] as usize] = v as u32;
        fill[c as usize] += 1;
    }
    maybe.sort_unstable_by_key(|&(u, _)| comp[u as usize]);
    let mut reach = vec![0u64; comps as usize];
    let mut i = 0;
    while i < maybe.len() {
        sc.check(deadline)?;
        // The next (up to) 64 distinct target components.
        let mut targets: Vec<u32> = Vec::with_capacity(64);
        let mut j = i;
        while j < maybe.len() {
            let cu = comp[maybe[j].0 as usize];
            if targets.last() != Some(&cu) {
                if targets.len() == 64 {
                    break;
                }
                targets.push(cu);
            }
            j += 1;
        }
        reach.iter_mut().for_each(|r| *r = 0);
        for (bit, &t) in targets.iter().enumerate() {
            reach[t as usize] |= 1 << bit;
        }
        for c in 0..comps as usize {
            let mut r = reach[c];
            for &x in &members[start[c] as usize..start[c + 1] as usize] {
                for (y, _) in rest.out(x) {
                    let cy = comp[y as usize] as usize;
                    if cy != c {
                        r |= reach[cy];
                    }
                }
            }
            reach[c] = r;
            sc.work += (start[c + 1] - start[c]) as u64;
        }
        for &(u, v) in &maybe[i..j] {
            let bit = targets
                .iter()
                .position(|&t| t == comp[u as usize])
                .expect("target of this chunk");
            if reach[comp[v as usize] as usize] & (1 << bit) != 0 {
                if let Some(c) = path_back((u, v), sc)? {
                    return Ok(Some(c));
                }
            }
        }
        i = j;
    }
    Ok(None)
}

/// Shortest walk from `from` to `to` (a cycle when equal) meeting `spec`, staying inside
/// `from`'s component when `within` is given, never passing through `from` or `to` midway.
fn bfs(
    g: &Graph,
    spec: CycleSpec,
    (from, to): (u32, u32),
    within: Option<&[u32]>,
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
    let home = within.map(|c| c[from as usize]);
    let start = state(from, 0, 0, 0);
    sc.queue.clear();
    sc.queue.push(start);
    sc.stamp[start as usize] = epoch;
    let mut head = 0;
    while head < sc.queue.len() {
        let cur = sc.queue[head];
        head += 1;
        let v = cur / STATES as u32;
        let rest = cur % STATES as u32;
        let (rw, a, b) = ((rest / 4) as u8, ((rest / 2) % 2) as u8, (rest % 2) as u8);
        for (w, e) in g.out(v) {
            sc.work += 1;
            if sc.work & 0xffff == 0 {
                sc.check(deadline)?;
            }
            if home.is_some_and(|h| within.expect("home implies within")[w as usize] != h) {
                continue;
            }
            let labels = e & mask;
            if labels == 0 || (w == from && w != to) {
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
                let a2 = a | u8::from(l & spec.need_a != 0);
                let b2 = b | u8::from(l & spec.need_b != 0);
                if w == to {
                    let rw_ok = match spec.rw {
                        RwRule::Zero => rw2 == 0,
                        RwRule::One => rw2 == 1,
                        RwRule::TwoPlus => rw2 == 2,
                        RwRule::Any => true,
                    };
                    if rw_ok && (spec.need_a == 0 || a2 == 1) && (spec.need_b == 0 || b2 == 1) {
                        return Ok(Some(unwind(sc, start, cur, (v, w, l))));
                    }
                    continue; // passing through the target again would not be simple
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
    fn fan_goes_through_a_hub_but_keeps_self_pairs_direct() {
        let mut e = Edges::new(5, 1, 0);
        e.fan(&[1, 2, 3], &[3, 4]);
        let hub = 5;
        assert_eq!(e.vertices, 6);
        let mut got = e.list.clone();
        got.sort_unstable();
        assert_eq!(
            got,
            vec![
                (1, hub, RW),
                (2, hub, RW),
                (3, 4, RW),
                (hub, 3, VIA),
                (hub, 4, VIA)
            ]
        );
        let mut small = Edges::new(5, 1, FAN_LIMIT);
        small.fan(&[1, 2, 3], &[3, 4]);
        assert_eq!(small.vertices, 5, "few pairs: direct edges");
        assert_eq!(small.list.len(), 5);
    }

    #[test]
    fn merging_hubs_yields_transaction_steps() {
        let walk = vec![(1, 9, RW), (9, 4, VIA), (4, 1, WR)];
        assert_eq!(merge_hubs(&walk, 5), vec![(1, 4, RW), (4, 1, WR)]);
        let from_hub = vec![(9, 4, VIA), (4, 1, WR), (1, 9, RW)];
        assert_eq!(merge_hubs(&from_hub, 5), vec![(4, 1, WR), (1, 4, RW)]);
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
