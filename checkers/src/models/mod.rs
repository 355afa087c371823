//! The sequential specifications the linearizability checker knows, one per file.

pub mod cas_register;
pub mod kv;
pub mod register;

/// Interns JSON values as dense `u32` ids so states and ops compare as integers.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    ids: std::collections::HashMap<String, u32>,
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
