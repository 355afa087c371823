//! Packet faults on kernels without tc netem (this machine kind's kernel has no sch_netem):
//! loss is an iptables `statistic` DROP of the node's outgoing packets, delay is an iptables
//! NFQUEUE rule handing them to `faultline netdelay`, which holds each packet for the delay
//! and releases it in order. Both act on the node's egress, like netem on its interface.
//! Real packets, real loss: TCP sees drops and retransmits.
//!
//! Two chains of faultline's own, `FAULTLINE-PKT-IN` and `FAULTLINE-PKT-OUT` (only OUT is
//! used; IN is kept for symmetric rules), jumped to from INPUT and OUTPUT; the NFQUEUE rule
//! uses `--queue-bypass`, so if the helper dies packets flow as normal. Teardown kills the
//! helper (pid file in the node's directory) and removes jumps and chains.

use crate::env::{for_each_host, Env};
use anyhow::Result;

/// Chain for outgoing packet faults.
pub const CHAIN_OUT: &str = "FAULTLINE-PKT-OUT";
/// The netfilter queue the delay helper serves.
pub const QUEUE: u16 = 7107;

fn pid_file(env: &dyn Env, i: usize) -> String {
    format!("{}/netdelay.pid", env.hosts()[i].workdir)
}

fn stop_helper(env: &dyn Env, i: usize) -> String {
    let pf = crate::env::ssh::quote(&pid_file(env, i));
    format!("if [ -f {pf} ]; then kill $(cat {pf}) 2>/dev/null; rm -f {pf}; fi")
}

fn sh(env: &dyn Env, i: usize, script: &str, what: &str) -> Result<()> {
    env.exec(i, &["sh", "-c", script], true)?
        .ok(&env.hosts()[i].describe, what)?;
    Ok(())
}

/// Creates the chain and its jump on every host (idempotent).
pub fn install(env: &dyn Env) -> Result<()> {
    for_each_host(env, |i| {
        let script = format!(
            "iptables -w -N {CHAIN_OUT} 2>/dev/null; iptables -w -F {CHAIN_OUT} && \
             (iptables -w -C OUTPUT -j {CHAIN_OUT} 2>/dev/null || iptables -w -I OUTPUT 1 -j {CHAIN_OUT})"
        );
        sh(env, i, &script, "install the FAULTLINE-PKT-OUT chain")
    })
}

/// Loss and delay on the egress of `nodes`; every other host is cleared. `helpers[i]` is the
/// faultline binary on host `i`.
pub fn apply(
    env: &dyn Env,
    helpers: &[String],
    nodes: &[usize],
    delay_ms: u64,
    loss: f64,
) -> Result<()> {
    for_each_host(env, |i| {
        let mut script = format!("{}; iptables -w -F {CHAIN_OUT}", stop_helper(env, i));
        if nodes.contains(&i) {
            if loss > 0.0 {
                script.push_str(&format!(
                    " && iptables -w -A {CHAIN_OUT} -m statistic --mode random --probability {:.4} -j DROP",
                    loss.clamp(0.0, 1.0)
                ));
            }
            if delay_ms > 0 {
                let wd = &env.hosts()[i].workdir;
                script.push_str(&format!(
                    " && ({bin} netdelay --queue {QUEUE} --delay-ms {delay_ms} > {log} 2>&1 < /dev/null & echo $! > {pf})\
                     && sleep 0.2 && iptables -w -A {CHAIN_OUT} -j NFQUEUE --queue-num {QUEUE} --queue-bypass",
                    bin = crate::env::ssh::quote(&helpers[i]),
                    log = crate::env::ssh::quote(&format!("{wd}/netdelay.log")),
                    pf = crate::env::ssh::quote(&pid_file(env, i)),
                ));
            }
        }
        sh(
            env,
            i,
            &script,
            "set packet loss/delay with iptables and NFQUEUE",
        )
    })
}

/// Removes every loss and delay.
pub fn clear(env: &dyn Env) -> Result<()> {
    for_each_host(env, |i| {
        let script = format!("{}; iptables -w -F {CHAIN_OUT}", stop_helper(env, i));
        sh(env, i, &script, "clear packet faults")
    })
}

/// The shell line that stops the helper and removes the jump and the chain.
pub fn remove_script(env: &dyn Env, i: usize) -> String {
    format!(
        "{}; while iptables -w -D OUTPUT -j {CHAIN_OUT} 2>/dev/null; do :; done; \
         iptables -w -F {CHAIN_OUT} 2>/dev/null; iptables -w -X {CHAIN_OUT} 2>/dev/null; true",
        stop_helper(env, i)
    )
}

/// Removes everything from every host (teardown); problems are printed.
pub fn remove(env: &dyn Env) {
    let _ = for_each_host(env, |i| {
        if let Err(e) = sh(
            env,
            i,
            &remove_script(env, i),
            "remove the packet-fault chain",
        ) {
            eprintln!("faultline: teardown: {e:#}");
        }
        Ok(())
    });
}
