//! `faultline`: the command-line entry point. Parsing lives in `cli`, each subcommand in `cmd/`.

fn main() {
    println!("faultline: under construction");
}
