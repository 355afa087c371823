//! What both inferences (list-append, rw-register) need first: dense integer ids for keys,
//! so per-key data is indexed by position and hash pairs of integers instead of strings; and
//! the check that every written value is unique per key, which all inference rests on.

use super::{Fx, Unusable};
use crate::txn::Txn;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// Interns key strings borrowed from the transactions.
#[derive(Default)]
pub(crate) struct Keys<'a> {
    ids: HashMap<&'a str, u32, BuildHasherDefault<Fx>>,
    names: Vec<&'a str>,
}

impl<'a> Keys<'a> {
    /// The id of `k`, assigning the next one on first sight.
    pub(crate) fn id(&mut self, k: &'a str) -> u32 {
        let names = &mut self.names;
        *self.ids.entry(k).or_insert_with(|| {
            names.push(k);
            names.len() as u32 - 1
        })
    }

    /// The key with id `k`.
    pub(crate) fn name(&self, k: u32) -> &'a str {
        self.names[k as usize]
    }

    /// How many keys.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
}

/// Notes each write `(key, value)` among one transaction's `mops` (found by `write`) through
/// `insert(key, value, intermediate)`, which returns the earlier writer of the same value if
/// any; `intermediate` says the transaction writes the key again later. Repeats are
/// described in `dups` (the first five).
pub(crate) fn note_writes<M>(
    t: &Txn,
    mops: &[M],
    write: impl Fn(&M) -> Option<(u32, i64)>,
    mut insert: impl FnMut(u32, i64, bool) -> Option<u32>,
    (txns, keys): (&[Txn], &Keys),
    dups: &mut Vec<String>,
) {
    for (i, m) in mops.iter().enumerate() {
        let Some((k, v)) = write(m) else { continue };
        let intermediate = mops[i + 1..]
            .iter()
            .any(|m2| write(m2).is_some_and(|(k2, _)| k2 == k));
        if let Some(old) = insert(k, v, intermediate) {
            if dups.len() < 5 {
                dups.push(format!(
                    "{v} to key {} by {} and {}",
                    keys.name(k),
                    super::txn_name(&txns[old as usize]),
                    super::txn_name(t)
                ));
            }
        }
    }
}

/// Fails when `dups` is not empty: inference needs unique values (`verb` = "appends"...).
pub(crate) fn reject_dups(dups: &[String], verb: &str) -> Result<(), Unusable> {
    if dups.is_empty() {
        return Ok(());
    }
    Err(Unusable(format!(
        "values must be unique per key, but the history {verb} {}",
        dups.join("; ")
    )))
}
