//! `tarn`: the command-line client for tarnd. See `tarn --help` and `src/cli/`.

#[path = "../cli/mod.rs"]
mod cli;

fn main() {
    std::process::exit(cli::main());
}
