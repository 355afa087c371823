//! The bank workload: money moves between a few accounts by transfers, and reads see all
//! balances at once. Transfers conserve money, so every read of a correct (serializable)
//! store adds up to the same total; a read that does not saw a transfer half applied, lost
//! or applied twice. Balances never go below zero: a transfer the source cannot cover is
//! refused by the client without writing anything (see the kvnode client).

use crate::Op;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The accounts.
pub const ACCOUNTS: [&str; 5] = ["acct0", "acct1", "acct2", "acct3", "acct4"];
/// Every account's balance before any transfer (an account never written holds it).
pub const INITIAL_BALANCE: i64 = 100;
/// Largest amount a transfer moves.
pub const MAX_AMOUNT: i64 = 5;
/// Percent of ops that are reads of all balances.
pub const READ_PERCENT: u32 = 40;

/// The accounts as owned strings.
pub fn accounts() -> Vec<String> {
    ACCOUNTS.iter().map(|a| a.to_string()).collect()
}

/// The total every read must show.
pub fn total() -> i64 {
    INITIAL_BALANCE * ACCOUNTS.len() as i64
}

/// Generator state of one worker.
#[derive(Debug, Clone)]
pub struct Bank {
    rng: ChaCha8Rng,
}

impl Bank {
    /// A generator drawing from `rng`.
    pub fn new(rng: ChaCha8Rng) -> Self {
        Bank { rng }
    }

    /// A read of every balance, or a transfer of 1..=[`MAX_AMOUNT`] between two different
    /// accounts.
    pub fn next_op(&mut self) -> Op {
        if self.rng.gen_range(0..100) < READ_PERCENT {
            return Op::ReadBalances {
                accounts: accounts(),
            };
        }
        let from = self.rng.gen_range(0..ACCOUNTS.len());
        let to = (from + self.rng.gen_range(1..ACCOUNTS.len())) % ACCOUNTS.len();
        Op::Transfer {
            from: ACCOUNTS[from].into(),
            to: ACCOUNTS[to].into(),
            amount: self.rng.gen_range(1..=MAX_AMOUNT),
        }
    }
}
