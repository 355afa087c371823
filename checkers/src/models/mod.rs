//! The sequential specifications the linearizability checker knows, one per file.

pub mod cas_register;
pub mod kv;
pub mod multi_register;
pub mod register;

use std::hash::{BuildHasherDefault, Hasher};

/// An FxHash-style hasher (fast, not DoS-resistant): for the search's memo and the models'
/// interning tables, which hash millions of small keys. A hostile history can only make its
/// own check slower, within the time budget.
#[derive(Default)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let mut last = [0u8; 8];
        let rest = chunks.remainder();
        last[..rest.len()].copy_from_slice(rest);
        self.write_u64(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 56));
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(n as u64);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A `HashMap` with [`FxHasher`].
pub(crate) type FxMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Interns JSON values as dense `u32` ids so states and ops compare as integers.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    ids: FxMap<String, u32>,
    values: Vec<serde_json::Value>,
}

impl Interner {
    pub(crate) fn id(&mut self, v: &serde_json::Value) -> u32 {
        let text = v.to_string();
        if let Some(&id) = self.ids.get(&text) {
            return id;
        }
        let id = self.values.len() as u32;
        self.ids.insert(text, id);
        self.values.push(v.clone());
        id
    }
    pub(crate) fn value(&self, id: u32) -> &serde_json::Value {
        &self.values[id as usize]
    }
    /// Approximate heap bytes held (the values are small: registers hold scalars).
    pub(crate) fn bytes(&self) -> usize {
        self.values.capacity() * (std::mem::size_of::<serde_json::Value>() + 32)
            + self.ids.capacity() * (std::mem::size_of::<(String, u32)>() + 24)
    }
}
